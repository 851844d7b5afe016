use std::{
    fs::File,
    sync::atomic::{AtomicUsize, Ordering as AtomicOrdering},
    time::Duration,
};

use super::*;

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "flv-recorder-quota-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, AtomicOrdering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    /// Writes `bytes` bytes at `rel`, last modified `age_s` seconds ago.
    fn file(&self, rel: &str, bytes: usize, age_s: u64) -> PathBuf {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, vec![0u8; bytes]).unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_s);
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
        p
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn recorder_file_names() {
    for ok in [
        "cam-20261204T184900Z.flv",
        "cam-20261204T184900Z-1.flv",
        "cam-20261204T184900Z-999.flv",
        "my-cam-20261204T184900Z.flv",
        "a.b_c-20261204T184900Z.flv",
    ] {
        assert!(is_recorder_file_name(ok), "{ok}");
    }
    for bad in [
        "cam.flv",
        "cam-20261204T184900Z.mp4",
        "cam-20261204T184900.flv",
        "cam-2026120xT184900Z.flv",
        "-20261204T184900Z.flv",
        ".x-20261204T184900Z.flv",
        "cam-20261204T184900Z-.flv",
        "cam-20261204T184900Z-12345.flv",
        "cam-20261204T184900Z-1a.flv",
        "20261204T184900Z.flv",
        "notes.txt",
        "",
    ] {
        assert!(!is_recorder_file_name(bad), "{bad}");
    }
}

#[test]
fn counts_files_of_the_directory_and_its_apps_not_links_or_deeper() {
    let t = Tmp::new("count");
    let d = &t.0.join("rec");
    t.file("rec/top.txt", 10, 0);
    t.file("rec/fier/cam-20261204T184900Z.flv", 100, 0);
    t.file("rec/fier/cam.flv", 1000, 0);
    t.file("rec/fier/deeper/x-20261204T184900Z.flv", 5000, 0);
    // A link to a big file elsewhere counts for nothing, and is no candidate.
    let outside = t.file("outside/big-20261204T184900Z.flv", 50_000, 0);
    std::os::unix::fs::symlink(&outside, d.join("fier/link-20261204T184900Z.flv")).unwrap();
    std::os::unix::fs::symlink(t.0.join("outside"), d.join("linkedapp")).unwrap();
    let q = Quota::new(d.clone(), 1 << 30, OnFull::DeleteOldest);
    let scan = q.scan();
    assert_eq!(scan.total, 1110);
    assert!(!scan.truncated);
    let names: Vec<_> = scan.candidates.iter().map(|c| c.path.clone()).collect();
    assert_eq!(names, [d.join("fier/cam-20261204T184900Z.flv")]);
    assert_eq!(q.admit(), Ok(()));
    assert_eq!(q.used(), 1110);

    // A directory that does not exist yet holds nothing.
    let q = Quota::new(t.0.join("none"), 1, OnFull::Refuse);
    assert_eq!(q.admit(), Ok(()));
}

#[test]
fn refuse_mode_refuses_at_the_quota_and_admits_again_when_room_is_made() {
    let t = Tmp::new("refuse");
    let d = t.0.join("rec");
    let a = t.file("rec/fier/cam-20261204T100000Z.flv", 600, 60);
    let q = Quota::new(d.clone(), 1000, OnFull::Refuse);
    assert_eq!(q.admit(), Ok(()));
    // Writes are counted as they happen; the quota is reached at 1000.
    assert!(q.charge(300));
    assert_eq!(q.used(), 900);
    // The charge itself is not on disk (no file grew): the rescan finds room again.
    assert!(q.charge(200));
    assert_eq!(q.used(), 600);
    let b = t.file("rec/fier/cam-20261204T110000Z.flv", 400, 30);
    assert!(q.charge(1), "counted 601: no rescan yet");
    assert!(!q.charge(399), "1000 bytes on disk: the recording stops");
    let e = q.admit().unwrap_err();
    assert!(
        e.contains("1000 bytes") && e.contains("max_total_bytes is 1000"),
        "{e}"
    );
    assert!(a.exists() && b.exists(), "refuse never deletes");
    // The operator deletes a file: recordings start again.
    fs::remove_file(&a).unwrap();
    assert_eq!(q.admit(), Ok(()));
    assert_eq!(q.used(), 400);
}

#[test]
fn delete_oldest_deletes_only_finished_recorder_files_oldest_first() {
    let t = Tmp::new("oldest");
    let d = t.0.join("rec");
    let oldest = t.file("rec/ann/cam-20261204T080000Z.flv", 300, 300);
    let old = t.file("rec/fier/cam-20261204T090000Z-1.flv", 300, 200);
    let newer = t.file("rec/fier/cam-20261204T100000Z.flv", 300, 100);
    // Not the recorder's names, or in the wrong place: kept whatever their age.
    let appended = t.file("rec/fier/cam.flv", 100, 1000);
    let other = t.file("rec/fier/notes.txt", 50, 1000);
    let top = t.file("rec/x-20261204T080000Z.flv", 50, 1000);
    let deep = t.file("rec/fier/sub/x-20261204T080000Z.flv", 50, 1000);
    // Outside the directory, reachable by a link from inside: never touched.
    let outside = t.file("outside/cam-20261204T070000Z.flv", 300, 1000);
    std::os::unix::fs::symlink(&outside, d.join("fier/cam-20261204T070000Z.flv")).unwrap();
    std::os::unix::fs::symlink(t.0.join("outside"), d.join("evil")).unwrap();

    // 1100 counted (300 * 3 + 100 + 50 + 50; the deep and linked ones are not); under 800
    // means deleting the two oldest.
    let q = Quota::new(d.clone(), 800, OnFull::DeleteOldest);
    assert_eq!(q.admit(), Ok(()));
    assert!(!oldest.exists() && !old.exists());
    for kept in [&newer, &appended, &other, &top, &deep, &outside] {
        assert!(kept.exists(), "{}", kept.display());
    }
    assert_eq!(q.used(), 500);

    // A file being recorded to is never deleted, even the oldest: then it refuses.
    let open = File::open(&newer).unwrap();
    let guard = OpenFile::new(&open.metadata().unwrap());
    let q = Quota::new(d.clone(), 400, OnFull::DeleteOldest);
    let e = q.admit().unwrap_err();
    assert!(e.contains("no finished recording is left"), "{e}");
    assert!(newer.exists());
    drop(guard);
    assert_eq!(q.admit(), Ok(()));
    assert!(!newer.exists());
    assert_eq!(q.used(), 200);
}

#[test]
fn delete_oldest_makes_room_while_a_recording_grows() {
    let t = Tmp::new("grow");
    let d = t.0.join("rec");
    let old = t.file("rec/fier/cam-20261204T080000Z.flv", 500, 100);
    // The growing recording, open.
    let cur = t.file("rec/fier/cam-20261204T090000Z.flv", 0, 0);
    let f = File::options().append(true).open(&cur).unwrap();
    let _open = OpenFile::new(&f.metadata().unwrap());
    let q = Quota::new(d, 1000, OnFull::DeleteOldest);
    assert_eq!(q.admit(), Ok(()));
    use std::io::Write;
    (&f).write_all(&[0u8; 400]).unwrap();
    assert!(q.charge(400));
    assert!(old.exists());
    (&f).write_all(&[0u8; 200]).unwrap();
    assert!(q.charge(200), "the old file goes");
    assert!(!old.exists() && cur.exists());
    assert_eq!(q.used(), 600);
    (&f).write_all(&[0u8; 400]).unwrap();
    assert!(!q.charge(400), "nothing left to delete but the open file");
    assert!(cur.exists());
}

#[test]
fn a_directory_too_large_to_scan_refuses() {
    let t = Tmp::new("bound");
    let d = t.0.join("rec");
    for i in 0..5 {
        t.file(&format!("rec/fier/cam-20261204T0{i}0000Z.flv"), 1, 10);
    }
    let q = Quota::new(d.clone(), 1 << 20, OnFull::DeleteOldest).with_max_entries(5);
    let e = q.admit().unwrap_err();
    assert!(e.contains("more than 5 entries"), "{e}");
    let q = Quota::new(d, 1 << 20, OnFull::DeleteOldest).with_max_entries(6);
    assert_eq!(q.admit(), Ok(()));
}
