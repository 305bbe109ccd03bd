//! Hostile checkpoints and settings (issue 25): a checkpoint whose settings claim an absurd model (checksums
//! recomputed, so integrity passes) is refused before anything is allocated, as are such flags; a model file
//! that does not fit its settings gives a short message; non-finite weights are refused; temporaries of killed
//! writes are removed at the next start.

use std::path::Path;

use burn::prelude::*;
use cadet_model::{
    LarsConfig, Normalization, ResNetConfig, SimClrConfig, SimClrTrainer, SimClrV2Config,
    StopAfter, TrainConfig, ViewPairs,
};
use ndarray::Array4;
use sha2::{Digest, Sha256};

/// Eight constant 8 × 8 images.
struct Flat;

impl ViewPairs for Flat {
    fn len(&self) -> usize {
        8
    }
    fn pairs(
        &self,
        indices: &[usize],
        _seed: u64,
    ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
        let view = |salt: usize| {
            Array4::from_shape_fn((indices.len(), 3, 8, 8), |(i, c, y, x)| {
                ((indices[i] * 7 + c * 5 + y * 3 + x + salt) % 11) as f32 / 11.0
            })
        };
        Ok((view(0), view(1)))
    }
}

fn tiny_model(base_width: usize) -> SimClrConfig {
    SimClrConfig::new(
        ResNetConfig::new(18)
            .with_cifar_stem(true)
            .with_base_width(base_width)
            .into(),
    )
    .with_hidden(8)
    .with_output(4)
}

/// A one-step run of a tiny model, checkpointed in `dir`; returns the checkpoint folder.
fn checkpoint(dir: &Path) -> std::path::PathBuf {
    let config = TrainConfig::new(4, 2, LarsConfig::new()).with_seed(1);
    let mut t = SimClrTrainer::new(
        tiny_model(4),
        config,
        Normalization::identity(),
        &Device::flex(),
        8,
    )
    .unwrap();
    let steps = StopAfter {
        steps: Some(1),
        time: None,
    };
    t.train(&Flat, &cadet_core::NoProgress, steps, Some((dir, 1)))
        .unwrap();
    dir.join("ckpt-00000001")
}

/// Rewrites `file` of the checkpoint `ckpt` with `edit` and records its new checksum, as an attacker would.
fn tamper(ckpt: &Path, file: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let path = ckpt.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let sums_path = ckpt.join("checksums.json");
    let mut sums: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sums_path).unwrap()).unwrap();
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sums[file] = digest.into();
    std::fs::write(&sums_path, sums.to_string()).unwrap();
}

/// Writes NaN over the last `f32` of `file` in the checkpoint `ckpt` (checksums recomputed) and returns the error
/// resuming from `dir` gives.
fn resume_with_last_float_nan(dir: &Path, ckpt: &Path, file: &str) -> String {
    tamper(ckpt, file, |bytes| {
        let at = bytes.len() - 4;
        bytes[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    SimClrTrainer::resume(dir, &Device::flex())
        .err()
        .expect("a NaN in the checkpoint is refused")
        .to_string()
}

/// Sets the encoder's base width in `settings.json`.
fn claim_base_width(ckpt: &Path, width: u64) {
    tamper(ckpt, "settings.json", |bytes| {
        let mut s: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        s["model"]["encoder"]["base_width"] = width.into();
        *bytes = serde_json::to_vec(&s).unwrap();
    });
}

/// Base width 4,000,000 in the settings (checksums recomputed) is refused before the model is built (it used
/// to attempt the allocation and abort).
#[test]
fn a_checkpoint_claiming_a_huge_model_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    claim_base_width(&ckpt, 4_000_000);
    let err = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("settings.json") && err.contains("4000000"),
        "{err}"
    );
}

/// A negative temperature in the settings (checksums recomputed) is refused at resume, naming the setting,
/// rather than training into NaN losses that read as divergence.
#[test]
fn out_of_range_training_settings_are_refused_at_resume() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    tamper(&ckpt, "settings.json", |bytes| {
        let mut s: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        s["train"]["temperature"] = (-1.0).into();
        *bytes = serde_json::to_vec(&s).unwrap();
    });
    let err = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("settings.json") && err.contains("temperature"),
        "{err}"
    );
}

/// The error resuming from `dir` gives after `edit` rewrote `file` of its checkpoint (checksums recomputed).
fn resume_after_json_edit(
    dir: &Path,
    ckpt: &Path,
    file: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    tamper(ckpt, file, |bytes| {
        let mut s: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        edit(&mut s);
        *bytes = serde_json::to_vec(&s).unwrap();
    });
    SimClrTrainer::resume(dir, &Device::flex())
        .err()
        .unwrap_or_else(|| panic!("the edited {file} must be refused"))
        .to_string()
}

/// A file someone put inside a checkpoint folder is never deleted: pruning used to remove the folder whole (the
/// eleventh hostile pass lost `evil.sh` that way), and `clear_checkpoints` (`--overwrite`) refuses, removing
/// nothing.
#[test]
fn checkpoint_folders_holding_other_files_are_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let first = checkpoint(dir.path());
    let foreign = first.join("notes.txt");
    std::fs::write(&foreign, b"mine").unwrap();
    let mut t = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    let steps = StopAfter {
        steps: Some(3),
        time: None,
    };
    // keep_checkpoints is 3 by default: four more checkpoints would prune the first.
    t.train(&Flat, &cadet_core::NoProgress, steps, Some((dir.path(), 1)))
        .unwrap();
    assert!(foreign.exists(), "pruning deleted a file it did not write");
    let e = SimClrTrainer::clear_checkpoints(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing removed"), "{e}");
    assert!(foreign.exists() && dir.path().join("latest").exists());
}

/// `latest` naming an older checkpoint than the folder holds is refused, naming both: resuming from it used to
/// train a second history beside the first (ckpt-692 of the old run between the new 700 and 712).
#[test]
fn latest_behind_a_newer_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = checkpoint(dir.path());
    let mut t = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    let steps = StopAfter {
        steps: Some(2),
        time: None,
    };
    t.train(&Flat, &cadet_core::NoProgress, steps, Some((dir.path(), 1)))
        .unwrap();
    let newest = std::fs::read_to_string(dir.path().join("latest")).unwrap();
    assert_ne!(newest.trim(), "ckpt-00000001");
    std::fs::write(
        dir.path().join("latest"),
        first.file_name().unwrap().to_str().unwrap(),
    )
    .unwrap();
    let e = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .expect("an older latest must be refused")
        .to_string();
    assert!(
        e.contains("ckpt-00000001") && e.contains(newest.trim()),
        "{e}"
    );
    std::fs::write(dir.path().join("latest"), newest).unwrap();
    assert!(SimClrTrainer::resume(dir.path(), &Device::flex()).is_ok());
}

/// `latest` naming a checkpoint the folder does not hold is named as such (it blamed checksums.json), and a huge
/// `latest` is refused by its size, not read and quoted whole (a 28 MB error message before).
#[test]
fn latest_missing_or_huge_is_refused_briefly() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    std::fs::write(dir.path().join("latest"), "ckpt-692").unwrap();
    let e = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .expect("a missing checkpoint must be refused")
        .to_string();
    assert!(e.contains("no such checkpoint"), "{e}");
    std::fs::write(dir.path().join("latest"), "ckpt-00000001 ".repeat(10_000)).unwrap();
    let e = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .expect("a huge latest must be refused")
        .to_string();
    assert!(e.len() < 500 && e.contains("limit"), "{e}");
}

/// A key given twice in settings.json (checksums recomputed) was read as serde pleased (the last); now refused,
/// named. And an upper-case digest in checksums.json is the same digest: it resumes, as it did not before.
#[test]
fn repeated_json_keys_are_refused_and_digests_compare_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    let sums_path = ckpt.join("checksums.json");
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let lowercase_names: serde_json::Value = serde_json::from_str(&sums).unwrap();
    let upper_digests: serde_json::Map<String, serde_json::Value> = lowercase_names
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_ascii_uppercase().into()))
        .collect();
    std::fs::write(
        &sums_path,
        serde_json::Value::Object(upper_digests).to_string(),
    )
    .unwrap();
    assert!(SimClrTrainer::resume(dir.path(), &Device::flex()).is_ok());

    tamper(&ckpt, "settings.json", |bytes| {
        let text = String::from_utf8(bytes.clone()).unwrap();
        let key = "\"temperature\":";
        assert!(text.contains(key));
        *bytes = text
            .replacen(key, "\"temperature\":50.0,\"temperature\":", 1)
            .into_bytes();
    });
    let e = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .expect("a repeated key must be refused")
        .to_string();
    assert!(
        e.contains("settings.json") && e.contains("temperature") && e.contains("twice"),
        "{e}"
    );
}

/// Values that train silently wrong rather than fail (found by the fourth hostile pass, each accepted before):
/// a huge temperature (the loss is constant), a warm-up past the schedule (the learning rate never rises), a
/// negative weight decay, a momentum of 1 or more; and a state.json whose k-NN record or losses cannot come
/// from a run.
#[test]
fn settings_and_state_that_train_silently_wrong_are_refused_at_resume() {
    type Edit = fn(&mut serde_json::Value);
    let settings: [(&str, Edit); 9] = [
        ("temperature", |s| s["train"]["temperature"] = 1e308.into()),
        // A fourth mean was "trailing characters at line 34 column 7".
        ("three channels need 3", |s| {
            s["normalization"]["mean"] = serde_json::json!([0.4, 0.5, 0.6, 0.7])
        }),
        // 0 pruned the checkpoint the run resumed from.
        ("keep_checkpoints", |s| {
            s["train"]["keep_checkpoints"] = 0.into()
        }),
        ("warmup_epochs", |s| {
            s["train"]["warmup_epochs"] = 1e308.into()
        }),
        ("lars.weight_decay", |s| {
            s["train"]["lars"]["weight_decay"] = (-1.0).into()
        }),
        ("lars.momentum", |s| {
            s["train"]["lars"]["momentum"] = 1e308.into()
        }),
        ("base_lr", |s| s["train"]["base_lr"] = 1e300.into()),
        ("temperature", |s| s["train"]["temperature"] = 1e-300.into()),
        ("normalization", |s| {
            s["normalization"]["std"] = serde_json::json!([1e-30, 1.0, 1.0])
        }),
    ];
    for (name, edit) in settings {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = checkpoint(dir.path());
        let err = resume_after_json_edit(dir.path(), &ckpt, "settings.json", edit);
        assert!(
            err.contains("settings.json") && err.contains(name),
            "{name}: {err}"
        );
    }
    let state: [(&str, Edit); 7] = [
        ("NT-Xent losses lie in [0, ", |s| {
            s["losses"] = serde_json::json!([-5.62])
        }),
        ("NT-Xent losses lie in [0, ", |s| {
            s["losses"] = serde_json::json!([1e30])
        }),
        ("fewer than one batch", |s| s["dataset_len"] = 0.into()),
        ("invalid type: null", |s| {
            s["losses"] = serde_json::json!([null])
        }),
        ("k-NN accuracy of 5", |s| {
            s["knn"] = serde_json::json!([[1, 5.0]]);
        }),
        ("k-NN evaluation at step 18446744073709551615", |s| {
            s["knn"] = serde_json::json!([[u64::MAX, 0.5]]);
        }),
        ("2 losses for 1 steps", |s| {
            s["losses"] = serde_json::json!([1.0, 2.0]);
        }),
    ];
    for (what, edit) in state {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = checkpoint(dir.path());
        let err = resume_after_json_edit(dir.path(), &ckpt, "state.json", edit);
        assert!(
            err.contains("state.json") && err.contains(what),
            "{what}: {err}"
        );
    }
}

/// A settings.json or state.json that does not parse is named, with the part that failed.
#[test]
fn unreadable_settings_and_state_name_their_file() {
    for (file, text, what) in [
        ("settings.json", "{\"train\": ", "EOF while parsing"),
        ("state.json", "[]", "invalid length 0"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = checkpoint(dir.path());
        tamper(&ckpt, file, |bytes| *bytes = text.as_bytes().to_vec());
        let err = SimClrTrainer::resume(dir.path(), &Device::flex())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(file) && err.contains(what), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    let err = resume_after_json_edit(dir.path(), &ckpt, "settings.json", |s| {
        s["train"]["temperature"] = serde_json::Value::Null;
    });
    assert!(
        err.contains("settings.json") && err.contains("`train`"),
        "{err}"
    );
}

/// The optimizer state of another run (same architecture: other parameter ids) or of another architecture
/// (other shapes), checksums recomputed, is refused at resume: Burn would drop it silently and restart the
/// momentum from zero. The checkpoint's own state still resumes.
#[test]
fn the_optimizer_state_of_another_run_is_refused_at_resume() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ckpt = checkpoint(dir.path());
    let other_ckpt = checkpoint(other.path());
    assert!(SimClrTrainer::resume(dir.path(), &Device::flex()).is_ok());
    let foreign = std::fs::read(other_ckpt.join("optim.bpk")).unwrap();
    tamper(&ckpt, "optim.bpk", |bytes| *bytes = foreign);
    let err = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .expect("another run's optimizer state must be refused")
        .to_string();
    assert!(
        err.contains("optim.bpk") && err.contains("does not have"),
        "{err}"
    );
}

/// A zero or negative normalisation deviation in the settings (checksums recomputed) is refused at resume,
/// naming the setting, rather than dividing the images by it.
#[test]
fn a_non_positive_normalisation_deviation_is_refused_at_resume() {
    for std in [0.0, -0.5] {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = checkpoint(dir.path());
        tamper(&ckpt, "settings.json", |bytes| {
            let mut s: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            s["normalization"]["std"][1] = std.into();
            *bytes = serde_json::to_vec(&s).unwrap();
        });
        let err = SimClrTrainer::resume(dir.path(), &Device::flex())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("settings.json") && err.contains("normalization"),
            "{err}"
        );
    }
}

/// Settings of another (valid) architecture than the model file's: a short message naming the file, not a
/// debug dump of every tensor.
#[test]
fn an_architecture_mismatch_at_resume_is_a_short_message() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    claim_base_width(&ckpt, 8);
    let err = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model.bpk"), "{err}");
    assert!(err.len() < 800, "{} bytes: {err}", err.len());
}

/// A NaN written into the model file (checksums recomputed) is refused at resume, naming the tensor.
#[test]
fn non_finite_weights_in_a_checkpoint_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    // The last float of the file's data: the last tensor's last element.
    let err = resume_with_last_float_nan(dir.path(), &ckpt, "model.bpk");
    assert!(err.contains("model.bpk") && err.contains("NaN"), "{err}");
}

/// A damaged file's message shows both SHA-256 digests in full (64 hex digits each).
#[test]
fn checksum_mismatches_show_both_full_digests() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    let path = ckpt.join("state.json");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let err = SimClrTrainer::resume(dir.path(), &Device::flex())
        .err()
        .unwrap()
        .to_string();
    let digests: Vec<&str> = err
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect();
    assert_eq!(digests.len(), 2, "{err}");
    assert_ne!(digests[0], digests[1]);
}

/// What killed checkpoint writes leave (`.ckpt-<step>.XXXXXX.tmp` folders, `.latest.XXXXXX.tmp` files) is
/// removed at the next start; other files are not.
#[test]
fn temporaries_of_killed_writes_are_removed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let staged = dir.path().join(".ckpt-00000002.a1B2c3.tmp");
    std::fs::create_dir(&staged).unwrap();
    std::fs::write(staged.join("model.bpk"), vec![0u8; 1000]).unwrap();
    let latest = dir.path().join(".latest.Zz9Yy8.tmp");
    std::fs::write(&latest, "ckpt-00000002").unwrap();
    let others = [
        "notes.txt",
        ".ckpt-notes.tmp",
        ".latest.tmp",
        ".other.a1B2c3.tmp",
    ];
    for other in others {
        std::fs::write(dir.path().join(other), "kept").unwrap();
    }
    // Inputs named like temporaries (hostile pass 19: reading the checkpoint deleted them): an image folder, a
    // .npy file.
    let images = dir.path().join(".ckpt-00000003.Qw3rty.tmp");
    std::fs::create_dir_all(images.join("cat")).unwrap();
    std::fs::write(images.join("cat").join("0.png"), b"png").unwrap();
    let npy = dir.path().join(".latest.Abc123.tmp");
    std::fs::write(&npy, b"\x93NUMPY\x01\x00").unwrap();
    SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert!(!staged.exists() && !latest.exists());
    for other in others {
        assert!(dir.path().join(other).exists(), "{other} removed");
    }
    assert!(images.join("cat").join("0.png").exists() && npy.exists());
    // A link named like a checkpoint or a staged write, to another run's checkpoint (hostile pass 21): never
    // followed by clearing.
    #[cfg(unix)]
    {
        let other = tempfile::tempdir().unwrap();
        let theirs = checkpoint(other.path());
        let files = std::fs::read_dir(&theirs).unwrap().count();
        let run = tempfile::tempdir().unwrap();
        checkpoint(run.path());
        std::os::unix::fs::symlink(&theirs, run.path().join("ckpt-00000000")).unwrap();
        std::os::unix::fs::symlink(&theirs, run.path().join(".ckpt-00000009.AbCdEf.tmp")).unwrap();
        let _ = SimClrTrainer::clear_checkpoints(run.path());
        assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), files);
    }
}

/// `latest` naming a checkpoint outside the folder (`../other/ckpt-…`) is refused rather than followed.
#[test]
fn latest_must_name_a_checkpoint_of_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let (run, other) = (root.path().join("run"), root.path().join("other"));
    checkpoint(&other);
    checkpoint(&run);
    std::fs::write(run.join("latest"), "../other/ckpt-00000001").unwrap();
    let err = SimClrTrainer::resume(&run, &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("../other/ckpt-00000001"), "{err}");
}

/// Absurd widths from flags are refused before any allocation or overflowing product (`--base-width 100000`
/// used to allocate 360 GB, `u64::MAX` to panic on capacity overflow).
#[test]
fn absurd_model_settings_are_refused() {
    let device = Device::flex();
    for width in [100_000, usize::MAX] {
        let err = tiny_model(width).init(&device).err().unwrap().to_string();
        assert!(err.contains("base width"), "{width}: {err}");
    }
    for (hidden, output) in [(0, 4), (usize::MAX, 4), (8, usize::MAX), (1 << 20, 1 << 20)] {
        let config = tiny_model(4).with_hidden(hidden).with_output(output);
        assert!(config.init(&device).is_err(), "{hidden} {output}");
    }
    let classes = ResNetConfig::new(18).with_num_classes(Some(usize::MAX));
    assert!(classes.init(&device).is_err());
    // Within every width bound, but 4.6 × 10¹¹ parameters.
    let huge = SimClrV2Config::new(200)
        .with_width_multiplier(16)
        .with_base_width(1024);
    let err = huge.init(&device).err().unwrap().to_string();
    assert!(err.contains("Limits::max_alloc_bytes"), "{err}");
    let huge = ResNetConfig::new(50)
        .with_width_multiplier(16)
        .with_base_width(1024);
    let err = huge.init(&device).err().unwrap().to_string();
    assert!(err.contains("Limits::max_alloc_bytes"), "{err}");
}

/// A NaN in the optimizer's saved velocities (checksums recomputed) is refused at resume, naming optim.bpk and
/// the state; it used to load and turn the weights to NaN at the next step.
#[test]
fn non_finite_optimizer_state_in_a_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    // A clean checkpoint resumes.
    assert!(SimClrTrainer::resume(dir.path(), &Device::flex()).is_ok());
    // The last float of the file's data: the last velocity's last element.
    let err = resume_with_last_float_nan(dir.path(), &ckpt, "optim.bpk");
    assert!(
        err.contains("optim.bpk") && err.contains("velocity") && err.contains("NaN"),
        "{err}"
    );
    // The check leaves nothing behind on the thread: a clean checkpoint resumes again.
    let other = tempfile::tempdir().unwrap();
    checkpoint(other.path());
    assert!(SimClrTrainer::resume(other.path(), &Device::flex()).is_ok());
}

/// Two training processes on one checkpoint folder: while one trains (it holds `dir/.lock`), the other's
/// training and clearing are refused ("in use") instead of removing the first one's writes in progress (the
/// fifth hostile pass lost a checkpoint that way); reading the checkpoint meanwhile is fine and removes none of
/// its temporaries. Once the lock is free, all of it works again, and a killed write's temporary goes.
#[test]
fn a_folder_another_process_trains_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let steps = StopAfter {
        steps: Some(1),
        time: None,
    };
    checkpoint(dir.path());
    let in_progress = dir.path().join(".ckpt-00000002.a1b2c3.tmp");
    std::fs::create_dir(&in_progress).unwrap();
    // Another process training there: it holds the folder's lock.
    let other = std::fs::File::options()
        .write(true)
        .open(dir.path().join(".lock"))
        .unwrap();
    other.lock().unwrap();
    let mut reader = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert!(
        in_progress.exists(),
        "another process's write in progress was removed"
    );
    let err = reader
        .train(&Flat, &cadet_core::NoProgress, steps, Some((dir.path(), 1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use by another training process"), "{err}");
    let err = SimClrTrainer::clear_checkpoints(dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use"), "{err}");
    assert!(reader.save_checkpoint(dir.path()).is_err());
    drop(other);
    let mut resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert!(
        !in_progress.exists(),
        "a killed write's temporary is removed once the folder is free"
    );
    resumed
        .train(&Flat, &cadet_core::NoProgress, steps, Some((dir.path(), 1)))
        .unwrap();
    // The same run's older state, saved beside `resumed`'s newer checkpoint once the folder is free.
    reader.save_checkpoint(dir.path()).unwrap();
    SimClrTrainer::clear_checkpoints(dir.path()).unwrap();
}

/// A checkpoint folder whose lock cannot be taken (read-only, or a planted `.lock` that is not a file) still
/// resumes for reading, removing nothing; training there is refused, naming the lock file.
#[test]
fn a_folder_whose_lock_cannot_be_taken_still_resumes_for_reading() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint(dir.path());
    let lock = dir.path().join(".lock");
    let _ = std::fs::remove_file(&lock);
    std::fs::create_dir(&lock).unwrap();
    let in_progress = dir.path().join(".ckpt-00000002.a1b2c3.tmp");
    std::fs::create_dir(&in_progress).unwrap();
    let mut resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert_eq!(resumed.state().step, 1);
    assert!(in_progress.exists());
    let steps = StopAfter {
        steps: Some(1),
        time: None,
    };
    let err = resumed
        .train(&Flat, &cadet_core::NoProgress, steps, Some((dir.path(), 1)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(".lock") && err.contains("not a regular file"),
        "{err}"
    );
}

/// A lock file deleted by hand while a run trains: the run stops at its next checkpoint with a message rather
/// than write on beside a second run that took a new lock.
#[cfg(unix)]
#[test]
fn a_run_whose_lock_file_is_deleted_stops_at_its_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    struct DeleteLockAfterFirstStep<'a>(&'a std::path::Path, std::sync::atomic::AtomicUsize);
    impl cadet_core::Progress for DeleteLockAfterFirstStep<'_> {
        fn start(&self, _: &str, _: u64) {}
        fn advance(&self, _: u64) {
            if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                std::fs::remove_file(self.0.join(".lock")).unwrap();
            }
        }
    }
    let mut t = SimClrTrainer::new(
        tiny_model(4),
        TrainConfig::new(4, 2, LarsConfig::new()).with_seed(1),
        Normalization::identity(),
        &Device::flex(),
        8,
    )
    .unwrap();
    let progress = DeleteLockAfterFirstStep(dir.path(), Default::default());
    let steps = StopAfter {
        steps: Some(2),
        time: None,
    };
    let err = t
        .train(&Flat, &progress, steps, Some((dir.path(), 1)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lock file was removed or replaced"), "{err}");
}

/// The state.json of an earlier checkpoint of the same run put into a later one (checksums recomputed): one
/// loss per step, every value in range, yet the schedule would restart at the earlier step with the later
/// weights. A checkpoint is named after its step, and the two must agree.
#[test]
fn a_state_of_another_step_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path());
    let err = resume_after_json_edit(dir.path(), &ckpt, "state.json", |s| {
        s["step"] = 0.into();
        s["losses"] = serde_json::json!([]);
    });
    assert!(
        err.contains("state.json") && err.contains("written at step 1"),
        "{err}"
    );
}
