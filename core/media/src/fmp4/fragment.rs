//! A movie fragment (`moof` and `mdat`): the samples of some stretch of time for each track,
//! each run saying where its bytes sit in the `mdat` that follows.

use super::boxes::{u32be, u64be, write_box, write_full_box};

/// A sync sample (decoding may start here).
pub const SAMPLE_SYNC: u32 = 0x0200_0000;
/// A sample that depends on others and is not a sync sample.
pub const SAMPLE_DEPENDENT: u32 = 0x0101_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// In the track's time scale.
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    /// Presentation minus decode time, in the track's time scale.
    pub composition_offset: i32,
}

/// One track's samples in a fragment: they start at `decode_time` and their bytes, one after
/// another, are `data`.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub track_id: u32,
    pub decode_time: u64,
    pub samples: &'a [Sample],
    pub data: &'a [u8],
}

/// Writes fragment number `sequence` with the runs given (empty runs are left out).
pub fn write_fragment(out: &mut Vec<u8>, sequence: u32, runs: &[Run<'_>]) {
    let moof_start = out.len();
    // Where each run's data offset is written, to be filled in once the moof's size is known.
    let mut offset_slots = Vec::new();
    write_box(out, b"moof", |o| {
        write_full_box(o, b"mfhd", 0, 0, |o| u32be(o, sequence));
        for run in runs.iter().filter(|r| !r.samples.is_empty()) {
            write_box(o, b"traf", |o| {
                // default-base-is-moof: data offsets count from the moof's first byte.
                write_full_box(o, b"tfhd", 0, 0x02_0000, |o| u32be(o, run.track_id));
                write_full_box(o, b"tfdt", 1, 0, |o| u64be(o, run.decode_time));
                // data offset, then per sample: duration, size, flags, composition offset.
                write_full_box(o, b"trun", 1, 0x0F01, |o| {
                    u32be(o, run.samples.len() as u32);
                    offset_slots.push(o.len());
                    u32be(o, 0);
                    for s in run.samples {
                        u32be(o, s.duration);
                        u32be(o, s.size);
                        u32be(o, s.flags);
                        o.extend_from_slice(&s.composition_offset.to_be_bytes());
                    }
                });
            });
        }
    });
    let moof_len = out.len() - moof_start;
    let mut at = moof_len + 8;
    for (slot, run) in offset_slots
        .into_iter()
        .zip(runs.iter().filter(|r| !r.samples.is_empty()))
    {
        let offset = u32::try_from(at).unwrap_or(u32::MAX);
        if let Some(s) = out.get_mut(slot..slot + 4) {
            s.copy_from_slice(&offset.to_be_bytes());
        }
        at += run.data.len();
    }
    write_box(out, b"mdat", |o| {
        for run in runs.iter().filter(|r| !r.samples.is_empty()) {
            o.extend_from_slice(run.data);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::boxes::{find_box, read_boxes};

    #[test]
    fn data_offsets_point_into_the_mdat() {
        let v = [Sample {
            duration: 3600,
            size: 3,
            flags: SAMPLE_SYNC,
            composition_offset: -1,
        }];
        let a = [Sample {
            duration: 1024,
            size: 2,
            flags: SAMPLE_SYNC,
            composition_offset: 0,
        }; 2];
        let mut out = vec![0xEE]; // bytes before the fragment do not move the offsets
        write_fragment(
            &mut out,
            7,
            &[
                Run {
                    track_id: 1,
                    decode_time: 90_000,
                    samples: &v,
                    data: b"vvv",
                },
                Run {
                    track_id: 2,
                    decode_time: 0,
                    samples: &[],
                    data: b"",
                },
                Run {
                    track_id: 2,
                    decode_time: 44_100,
                    samples: &a,
                    data: b"abcd",
                },
            ],
        );
        let frag = &out[1..];
        let boxes = read_boxes(frag);
        assert_eq!(boxes.len(), 2);
        let moof = boxes[0].body;
        let trafs: Vec<_> = read_boxes(moof)
            .into_iter()
            .filter(|b| &b.kind == b"traf")
            .collect();
        assert_eq!(trafs.len(), 2, "the empty run is left out");
        for (traf, expect) in trafs.iter().zip([&b"vvv"[..], b"abcd"]) {
            let trun = find_box(traf.body, b"trun").unwrap();
            let offset = u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
            assert_eq!(&frag[offset..offset + expect.len()], expect);
        }
        let trun = find_box(trafs[0].body, b"trun").unwrap();
        assert_eq!(&trun[24..28], &(-1i32).to_be_bytes());
        let tfdt = find_box(trafs[1].body, b"tfdt").unwrap();
        assert_eq!(u64::from_be_bytes(tfdt[4..12].try_into().unwrap()), 44_100);
    }
}
