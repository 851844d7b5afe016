//! Transport packets: the program tables and PES packets cut into 188-byte packets.

/// Bytes in a transport packet.
pub const TS_PACKET_LEN: usize = 188;
pub const PID_PAT: u16 = 0;
pub const PID_PMT: u16 = 0x1000;
pub const PID_VIDEO: u16 = 0x100;
pub const PID_AUDIO: u16 = 0x101;
pub const STREAM_TYPE_H264: u8 = 0x1B;
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
pub const STREAM_ID_VIDEO: u8 = 0xE0;
pub const STREAM_ID_AUDIO: u8 = 0xC0;

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, initial all ones, no final xor).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The continuity counters of the PIDs in use.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pat: u8,
    pmt: u8,
    video: u8,
    audio: u8,
}

impl Counters {
    fn next(&mut self, pid: u16) -> u8 {
        let c = match pid {
            PID_PAT => &mut self.pat,
            PID_PMT => &mut self.pmt,
            PID_VIDEO => &mut self.video,
            _ => &mut self.audio,
        };
        let now = *c;
        *c = (*c + 1) & 0x0F;
        now
    }
}

/// What the first packet of a PES carries in its adaptation field.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartFlags {
    /// A random access point (a keyframe, or any audio frame).
    pub random_access: bool,
    /// The program clock, in 90 kHz units (its extension is left 0).
    pub pcr: Option<u64>,
}

/// Cuts `payload` into packets of `pid`, the first with the payload-unit-start bit and `start`'s
/// adaptation field; the last is padded with adaptation-field stuffing.
pub fn packetize(
    out: &mut Vec<u8>,
    counters: &mut Counters,
    pid: u16,
    payload: &[u8],
    start: StartFlags,
) {
    let mut rest = payload;
    let mut first = true;
    loop {
        let mut af: Vec<u8> = Vec::new();
        if first && (start.random_access || start.pcr.is_some()) {
            let mut flags = 0u8;
            if start.random_access {
                flags |= 0x40;
            }
            if start.pcr.is_some() {
                flags |= 0x10;
            }
            af.push(flags);
            if let Some(pcr) = start.pcr {
                let base = pcr & 0x1_FFFF_FFFF;
                af.extend_from_slice(&[
                    (base >> 25) as u8,
                    (base >> 17) as u8,
                    (base >> 9) as u8,
                    (base >> 1) as u8,
                    (((base & 1) as u8) << 7) | 0x7E,
                    0,
                ]);
            }
        }
        let has_af = !af.is_empty();
        let room = TS_PACKET_LEN - 4 - if has_af { 1 + af.len() } else { 0 };
        let take = rest.len().min(room);
        if take < room {
            // Pad: the adaptation field grows to fill the packet.
            let total = TS_PACKET_LEN - 4 - take; // adaptation field with its length byte
            if !has_af && total >= 2 {
                af.push(0x00);
            }
            while 1 + af.len() < total {
                af.push(0xFF);
            }
        }
        let with_af = has_af || take < room;
        out.push(0x47);
        out.push((if first { 0x40 } else { 0 }) | ((pid >> 8) as u8 & 0x1F));
        out.push(pid as u8);
        out.push((if with_af { 0x30 } else { 0x10 }) | counters.next(pid));
        if with_af {
            out.push(af.len() as u8);
            out.extend_from_slice(&af);
        }
        let (now, later) = rest.split_at(take);
        out.extend_from_slice(now);
        rest = later;
        first = false;
        if rest.is_empty() {
            return;
        }
    }
}

/// One section (PAT or PMT) in its own packet, with the pointer field and the CRC.
fn section(out: &mut Vec<u8>, counters: &mut Counters, pid: u16, table: &[u8]) {
    let mut payload = Vec::with_capacity(table.len() + 5);
    payload.push(0); // pointer_field
    payload.extend_from_slice(table);
    payload.extend_from_slice(&crc32_mpeg2(table).to_be_bytes());
    // Tables are padded with 0xFF bytes, not adaptation stuffing.
    payload.resize(TS_PACKET_LEN - 4, 0xFF);
    out.push(0x47);
    out.push(0x40 | ((pid >> 8) as u8 & 0x1F));
    out.push(pid as u8);
    out.push(0x10 | counters.next(pid));
    out.extend_from_slice(&payload);
}

/// The program association table: program 1 at [`PID_PMT`].
pub fn pat(out: &mut Vec<u8>, counters: &mut Counters) {
    let section_length: u16 = 5 + 4 + 4;
    let t = [
        0x00,
        0xB0 | (section_length >> 8) as u8,
        section_length as u8,
        0x00,
        0x01, // transport_stream_id
        0xC1, // version 0, current
        0x00,
        0x00,
        0x00,
        0x01, // program 1
        0xE0 | (PID_PMT >> 8) as u8,
        PID_PMT as u8,
    ];
    section(out, counters, PID_PAT, &t);
}

/// The program map table for the streams present; the PCR is on video if there is video.
pub fn pmt(out: &mut Vec<u8>, counters: &mut Counters, video: bool, audio: bool) {
    let mut streams = Vec::new();
    if video {
        streams.push((STREAM_TYPE_H264, PID_VIDEO));
    }
    if audio {
        streams.push((STREAM_TYPE_AAC_ADTS, PID_AUDIO));
    }
    let pcr_pid = if video || !audio {
        PID_VIDEO
    } else {
        PID_AUDIO
    };
    let section_length = 9 + 5 * streams.len() as u16 + 4;
    let mut t = vec![
        0x02,
        0xB0 | (section_length >> 8) as u8,
        section_length as u8,
        0x00,
        0x01, // program 1
        0xC1,
        0x00,
        0x00,
        0xE0 | (pcr_pid >> 8) as u8,
        pcr_pid as u8,
        0xF0,
        0x00, // program_info_length 0
    ];
    for (ty, pid) in streams {
        t.extend_from_slice(&[ty, 0xE0 | (pid >> 8) as u8, pid as u8, 0xF0, 0x00]);
    }
    section(out, counters, PID_PMT, &t);
}

fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    let t = t & 0x1_FFFF_FFFF;
    [
        (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8) << 1) | 1,
        (t >> 7) as u8,
        ((t as u8) << 1) | 1,
    ]
}

/// A PES packet's header and payload: `pts` and `dts` in 90 kHz units (no DTS when equal).
pub fn pes(stream_id: u8, pts: u64, dts: u64, data: &[u8]) -> Vec<u8> {
    let with_dts = dts != pts;
    let header_data_len = if with_dts { 10 } else { 5 };
    let mut out = Vec::with_capacity(data.len() + 9 + header_data_len);
    out.extend_from_slice(&[0, 0, 1, stream_id]);
    let len = 3 + header_data_len + data.len();
    // Video PES may be longer than the field holds: 0 says "unbounded".
    let field = if len > 0xFFFF || stream_id == STREAM_ID_VIDEO {
        0
    } else {
        len as u16
    };
    out.extend_from_slice(&field.to_be_bytes());
    out.push(0x84); // '10', data_alignment_indicator
    out.push(if with_dts { 0xC0 } else { 0x80 });
    out.push(header_data_len as u8);
    if with_dts {
        out.extend_from_slice(&timestamp(0x3, pts));
        out.extend_from_slice(&timestamp(0x1, dts));
    } else {
        out.extend_from_slice(&timestamp(0x2, pts));
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_the_standard_check_string() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn payloads_of_every_length_fill_whole_packets_with_counters_in_order() {
        let mut c = Counters::default();
        for len in [
            0usize, 1, 170, 175, 176, 182, 183, 184, 185, 367, 368, 369, 1000,
        ] {
            for start in [
                StartFlags::default(),
                StartFlags {
                    random_access: true,
                    pcr: Some(123_456_789),
                },
            ] {
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = Vec::new();
                packetize(&mut out, &mut c, PID_VIDEO, &data, start);
                assert_eq!(out.len() % TS_PACKET_LEN, 0, "len {len}");
                // Reassemble the payload.
                let mut got = Vec::new();
                for p in out.chunks(TS_PACKET_LEN) {
                    assert_eq!(p[0], 0x47);
                    let afc = (p[3] >> 4) & 3;
                    let mut at = 4;
                    if afc & 2 != 0 {
                        at += 1 + p[4] as usize;
                    }
                    assert!(at <= TS_PACKET_LEN, "len {len}: adaptation field too long");
                    got.extend_from_slice(&p[at..]);
                }
                assert_eq!(got, data, "len {len}");
            }
        }
    }
}
