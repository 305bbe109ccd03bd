//! `--device` and `--tune-cache`, the flags of every program that trains or embeds.

use std::path::PathBuf;

use burn::prelude::Device;

/// Where a program's networks run, as flags (`#[command(flatten)]` into a clap parser).
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     device: cadet_report::device::DeviceArgs,
/// }
///
/// let args = Args::parse_from(["program", "--device", "cpu"]);
/// let device = args.device.open()?;
/// assert_eq!(device, burn::prelude::Device::flex());
/// assert!(Args::parse_from(["program", "--device", "tpu"]).device.open().is_err());
/// # Ok::<(), cadet_model::Error>(())
/// ```
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Where the networks run: cpu, cuda or cuda:N (a build with `--features cuda`), or jit-cpu (Burn's
    /// CubeCL CPU backend, `--features jit-cpu`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CUDA: the folder CubeCL keeps its autotuning results and compiled kernels in between runs, so that a
    /// run after the first one starts at full speed (default: `target/environment` of the Cargo workspace
    /// above the working folder, or ~/.cache/cubecl). Unused on the CPU backend.
    #[arg(long, env = "CADET_TUNE_CACHE", value_name = "DIR", value_parser = cache_folder)]
    pub tune_cache: Option<PathBuf>,
}

/// `--precision`, for the programs whose networks train or embed in it (flattened beside [`DeviceArgs`]).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct PrecisionArg {
    /// Arithmetic of the networks' forward passes: f32, or bf16 (mixed precision: bf16 convolutions and matrix
    /// products, f32 weights, batch norm and loss; for GPUs with bf16 units, slower on the CPU).
    #[arg(long, default_value = "f32")]
    pub precision: cadet_model::Precision,
}

impl PrecisionArg {
    /// The precision, checked against `device`: an error if the device has no arithmetic in it.
    pub fn on(&self, device: &Device) -> Result<cadet_model::Precision, cadet_model::Error> {
        self.precision.check(device)?;
        Ok(self.precision)
    }
}

impl DeviceArgs {
    /// The device, with the tuning cache placed first (CubeCL reads its configuration once, at the first GPU
    /// operation). On a CUDA device, says on stderr where the cache is.
    pub fn open(&self) -> Result<Device, cadet_model::Error> {
        let mut devices = self.open_each(std::slice::from_ref(&self.device))?;
        Ok(devices.remove(0))
    }

    /// The devices `names` (for data-parallel training: `--devices cuda:0,cuda:1`), with the tuning cache
    /// placed once, as [`open`](Self::open) does.
    pub fn open_each(&self, names: &[String]) -> Result<Vec<Device>, cadet_model::Error> {
        // Each name, and that this build has its backend, before the cache (which a build without CUDA refuses).
        for name in names {
            cadet_model::check_device(name)?;
        }
        let on_cpu = names.iter().all(|name| is_cpu(name));
        // The CPU backend does not autotune: a cache given (often through CADET_TUNE_CACHE, set once for a
        // shell) is left unused, with a word.
        if on_cpu && let Some(dir) = &self.tune_cache {
            eprintln!(
                "note: tuning cache {} not used: the CPU backend does not autotune (it is for CUDA)",
                dir.display()
            );
        }
        let cache = match on_cpu {
            true => None,
            false => cadet_model::tuning_cache(self.tune_cache.as_deref())?,
        };
        let devices = names
            .iter()
            .map(|name| cadet_model::device(name))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(cache) = cache {
            eprintln!("CubeCL's tuning cache: {}", cache.display());
        }
        Ok(devices)
    }

    /// Whether the device is the CPU backend (`cpu` or `flex`), for checks that only hold there (memory that
    /// the process maps).
    pub fn is_cpu(&self) -> bool {
        is_cpu(&self.device)
    }
}

/// A clap value parser for the tuning cache's folder: not empty (an empty `CADET_TUNE_CACHE=` is said as such).
fn cache_folder(text: &str) -> Result<PathBuf, String> {
    match text.trim().is_empty() {
        true => Err(
            "an empty path (--tune-cache or CADET_TUNE_CACHE): give a folder, or unset \
                     CADET_TUNE_CACHE"
                .into(),
        ),
        false => Ok(PathBuf::from(text)),
    }
}

/// Whether `name` names the CPU backend.
fn is_cpu(name: &str) -> bool {
    matches!(name.trim().to_ascii_lowercase().as_str(), "cpu" | "flex")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        device: DeviceArgs,
        #[command(flatten)]
        precision: PrecisionArg,
    }

    #[test]
    fn flags() {
        let args = Args::parse_from(["p"]);
        assert!(args.device.is_cpu());
        assert_eq!(args.precision.precision, cadet_model::Precision::F32);
        let args = Args::parse_from(["p", "--precision", "bf16"]);
        assert_eq!(
            args.precision.on(&Device::flex()).unwrap(),
            cadet_model::Precision::Bf16
        );
        assert!(Args::try_parse_from(["p", "--precision", "f16"]).is_err());
        assert_eq!(args.device.open().unwrap(), Device::flex());
        let args = Args::parse_from(["p", "--device", "tpu"]);
        assert!(args.device.open().is_err());
        // A cache with the CPU backend is left unused (CADET_TUNE_CACHE may be set for the shell), and not made.
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let flag = cache.to_str().unwrap();
        let args = Args::parse_from(["p", "--device", " CPU ", "--tune-cache", flag]);
        assert_eq!(args.device.open().unwrap(), Device::flex());
        let two = ["cpu".to_string(), "flex".to_string()];
        assert_eq!(args.device.open_each(&two).unwrap().len(), 2);
        assert!(!cache.exists());
        // An empty cache folder is named; a backend this build lacks is said before the cache is looked at.
        let e = Args::try_parse_from(["p", "--tune-cache", " "])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("CADET_TUNE_CACHE"), "{e}");
        if cadet_model::check_device("jit-cpu").is_err() {
            let args = Args::parse_from(["p", "--device", "jit-cpu", "--tune-cache", flag]);
            let e = args.device.open().unwrap_err().to_string();
            assert!(e.contains("jit-cpu") && !e.contains("tuning cache"), "{e}");
        }
    }
}
