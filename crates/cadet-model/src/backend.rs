//! Picking a device by name, for command lines: `cpu` (Burn's `flex` backend), `cuda` / `cuda:N` (Burn's CUDA
//! backend, with this crate's `cuda` feature) or `jit-cpu` (Burn's CubeCL CPU backend, `jit-cpu` feature).

use burn::prelude::*;

use crate::{Error, Result};

/// What a device name asks for.
enum Named {
    Cpu,
    JitCpu,
    Cuda(usize),
}

/// Parses a device name (case and surrounding spaces ignored).
fn parse(name: &str) -> Result<Named> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "cpu" | "flex" => Ok(Named::Cpu),
        "jit-cpu" => Ok(Named::JitCpu),
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => match cuda.strip_prefix("cuda:") {
            None => Ok(Named::Cuda(0)),
            Some(i) => i
                .parse::<usize>()
                .map(Named::Cuda)
                .map_err(|_| Error::InvalidConfig {
                    name: "device",
                    reason: format!("{name}: expected cuda:N with N a GPU index"),
                }),
        },
        _ => Err(Error::InvalidConfig {
            name: "device",
            reason: format!("{name}: expected cpu, cuda, cuda:N or jit-cpu"),
        }),
    }
}

/// The device named `name`: `cpu` or `flex` for the CPU backend; `cuda` or `cuda:N` for GPU `N` (default 0),
/// which needs the `cuda` feature.
pub fn device(name: &str) -> Result<Device> {
    match parse(name)? {
        Named::Cpu => Ok(Device::flex()),
        Named::JitCpu => jit_cpu_device(),
        Named::Cuda(index) => cuda_device(index),
    }
}

/// Checks the device name `name` as [`device`] reads it, and that this build has its backend, without touching
/// the device: what a program checks before it places the tuning cache ([`tuning_cache`]), which must come
/// before the first GPU operation (opening a CUDA device makes one).
///
/// ```
/// assert!(cadet_model::check_device("cpu").is_ok());
/// assert!(cadet_model::check_device("tpu").is_err());
/// assert!(cadet_model::check_device("cuda:x").is_err());
/// # #[cfg(not(feature = "jit-cpu"))]
/// assert!(cadet_model::check_device("jit-cpu").unwrap_err().to_string().contains("jit-cpu"));
/// ```
pub fn check_device(name: &str) -> Result<()> {
    match parse(name)? {
        // Without the backend, these give the error that says which feature is missing (no device is made).
        Named::JitCpu if !cfg!(feature = "jit-cpu") => jit_cpu_device().map(drop),
        Named::Cuda(index) if !cfg!(feature = "cuda") => cuda_device(index).map(drop),
        _ => Ok(()),
    }
}

#[cfg(feature = "jit-cpu")]
fn jit_cpu_device() -> Result<Device> {
    Ok(Device::cpu())
}

#[cfg(not(feature = "jit-cpu"))]
fn jit_cpu_device() -> Result<Device> {
    Err(Error::InvalidConfig {
        name: "device",
        reason: "jit-cpu (Burn's CubeCL CPU backend) needs the `jit-cpu` feature".into(),
    })
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device> {
    let device = Device::cuda(index);
    // Burn reports a missing driver or GPU by panicking on its device thread, at the first operation: make that
    // first operation here and turn the panic into an error.
    let probe = std::panic::catch_unwind(|| {
        Tensor::<1>::zeros([1], &device)
            .into_data()
            .try_to_vec::<f32>()
            .is_ok()
    });
    match probe {
        Ok(true) => Ok(device),
        _ => Err(Error::InvalidConfig {
            name: "device",
            reason: format!(
                "cuda:{index} is not usable (no NVIDIA driver, no such GPU, or the CUDA runtime failed; \
                 Burn's message is above)"
            ),
        }),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Result<Device> {
    Err(Error::InvalidConfig {
        name: "device",
        reason: "built without the `cuda` feature (cargo build --features cuda; see docs/guide.md)"
            .into(),
    })
}

/// Where CubeCL keeps what it learns about a GPU between processes (autotuning results and compiled kernels):
/// `dir` when given, else CubeCL's default (`target/environment` of the outermost Cargo workspace above the
/// working directory, or the user's cache folder, `~/.cache/cubecl`, outside one). Returns the cache's database
/// file, or `None` in a build without the `cuda` feature (where `dir` must be `None`).
///
/// Autotuning measures candidate kernels the first time each operation shape is met: minutes for a ResNet's
/// training step on a cold cache, a few seconds when every shape is already in the cache. Choose the place
/// before the first GPU operation of the process (before [`device`]): CubeCL reads its configuration once.
/// CubeCL's own settings stay in force (a `cubecl.toml`, `CUBECL_AUTOTUNE_LEVEL`, `CUBECL_AUTOTUNE_CACHE=0`
/// to tune afresh every process).
pub fn tuning_cache(dir: Option<&std::path::Path>) -> Result<Option<std::path::PathBuf>> {
    if let Some(dir) = dir {
        if dir.as_os_str().is_empty() {
            return Err(Error::InvalidConfig {
                name: "tuning cache",
                reason: "an empty path: give a folder".into(),
            });
        }
        if dir.exists() && !dir.is_dir() {
            return Err(Error::InvalidConfig {
                name: "tuning cache",
                reason: format!("{} exists and is not a folder", dir.display()),
            });
        }
    }
    cache_database(dir)
}

#[cfg(feature = "cuda")]
fn cache_database(dir: Option<&std::path::Path>) -> Result<Option<std::path::PathBuf>> {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        // Absolute: the cache stays where it was asked for if the working folder changes.
        let dir = dir.canonicalize().map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        // The configuration CubeCL would load itself (files, then environment variables), with the cache's
        // place changed; refused once CubeCL has read its configuration (a GPU operation ran already), unless
        // the cache is there already (a second device opened with the same setting).
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        config.environment.path = CacheConfig::Directory(dir.clone());
        if !CubeClRuntimeConfig::try_set(config) && burn::cubecl::environment::root() != dir {
            return Err(Error::InvalidConfig {
                name: "tuning cache",
                reason: format!(
                    "{}: CubeCL has read its configuration already; choose the cache before the first GPU \
                     operation",
                    dir.display()
                ),
            });
        }
    } else {
        // Loads CubeCL's configuration, which places the cache, so that the path below is the one used.
        let _ = CubeClRuntimeConfig::get();
    }
    Ok(Some(burn::cubecl::environment::path()))
}

#[cfg(not(feature = "cuda"))]
fn cache_database(dir: Option<&std::path::Path>) -> Result<Option<std::path::PathBuf>> {
    match dir {
        None => Ok(None),
        Some(dir) => Err(Error::InvalidConfig {
            name: "tuning cache",
            reason: format!(
                "{}: a tuning cache is for the CUDA backend; this build has no `cuda` feature",
                dir.display()
            ),
        }),
    }
}

/// Defines the C function `arc4random` in the binary that invokes it: for CUDA (`cuda`) or CubeCL CPU
/// (`jit-cpu`) binaries built with the LLVM stand-in of `scripts/setup-cuda-build.sh` that must run on glibc
/// older than 2.36 (Ubuntu 22.04), which lacks it.
///
/// Debian 12's static LLVM 22, linked into those builds, calls `arc4random` to seed its hashing, where the
/// quality needed is minimal. A library must not define a libc symbol for every program that depends on it,
/// so this crate defines none: a binary that needs the symbol invokes this macro once, at its top level,
/// under the features that link LLVM:
///
/// ```text
/// #[cfg(any(feature = "cuda", feature = "jit-cpu"))]
/// cadet_model::define_arc4random!();
/// ```
///
/// What it defines, called directly:
///
/// ```
/// cadet_model::define_arc4random!();
///
/// fn main() {
///     let draws: std::collections::HashSet<u32> = (0..100).map(|_| arc4random()).collect();
///     assert!(draws.len() > 95); // distinct draws (a collision has odds of about 1e-6)
/// }
/// ```
///
/// The examples of this repository do so. Check a binary with `nm -D --undefined-only BIN | grep arc4random`
/// (empty when defined) or `objdump -T BIN | grep GLIBC_2.36`.
#[macro_export]
macro_rules! define_arc4random {
    () => {
        /// `arc4random` for glibc < 2.36: a counter through std's randomly keyed SipHash (see
        /// `cadet_model::define_arc4random`).
        #[allow(unsafe_code)] // `no_mangle` defines a C symbol, replacing libc's where it has one
        #[unsafe(no_mangle)]
        pub extern "C" fn arc4random() -> u32 {
            use std::hash::{BuildHasher, Hasher};
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.finish() as u32
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(device("cpu").is_ok());
        assert!(device(" FLEX ").is_ok());
        assert!(matches!(device("tpu"), Err(Error::InvalidConfig { .. })));
        assert!(matches!(device("cuda:x"), Err(Error::InvalidConfig { .. })));
        #[cfg(not(feature = "cuda"))]
        assert!(matches!(device("cuda:0"), Err(Error::InvalidConfig { .. })));
    }

    #[test]
    fn tuning_cache_places() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let refused = |dir: &std::path::Path| {
            matches!(tuning_cache(Some(dir)), Err(Error::InvalidConfig { .. }))
        };
        assert!(refused(std::path::Path::new("")));
        assert!(refused(file.path()), "a file is not a cache folder");
        #[cfg(not(feature = "cuda"))]
        {
            assert!(matches!(tuning_cache(None), Ok(None)));
            let dir = tempfile::tempdir().unwrap();
            assert!(
                refused(dir.path()),
                "without the cuda feature there is no cache to place"
            );
        }
    }
}
