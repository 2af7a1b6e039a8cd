//! MLX's own distributed layer, made safe: a thin wrapper over mlx-c's `mlx_distributed_*`
//! (mlx-rs 0.33 has none) — backends, the global group, its rank and size, and the collectives
//! tensor parallelism needs — and, in [`shard`], how a model's weights are split over a group as
//! mlx-lm's `shard_linear` splits them. We never run a collective of our own: every sum and
//! gather is MLX's, over the backend MLX was started with (ring over TCP, MPI, NCCL, JACCL).
//!
//! A process joins a group once, at start ([`join`]); the model loader and the measuring session
//! then find it with [`current`].
pub mod launch;
pub mod shard;

use std::{
    cell::RefCell,
    ffi::{c_char, c_void, CStr, CString},
    sync::{Arc, OnceLock},
};

use mlx_rs::{Array, Dtype, Stream};
use serde::{Deserialize, Serialize};

use crate::{
    choice::{choice, Choice},
    error::{Error, Result},
    ops,
};

/// Which of MLX's distributed backends to start, or how to find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The backend the launcher's environment names (`MLX_HOSTFILE`: ring, `NCCL_HOST_IP`: nccl,
    /// `MLX_JACCL_COORDINATOR`: jaccl, `OMPI_COMM_WORLD_SIZE`/`PMI_SIZE`: mpi); none: one process.
    Auto,
    /// One process, no group.
    None,
    /// MLX picks the first backend it can start.
    Any,
    Ring,
    Mpi,
    Nccl,
    Jaccl,
}

choice!(Backend {
    Auto => ("auto", "the backend the launcher's environment names (mlx.launch, mpirun, mlxbench launch); else one process"),
    None => ("none", "one process, no group"),
    Any => ("any", "the first backend MLX can start"),
    Ring => ("ring", "MLX's ring over TCP (MLX_RANK and MLX_HOSTFILE, as mlx.launch sets them)"),
    Mpi => ("mpi", "MPI (started by mpirun; needs libmpi)"),
    Nccl => ("nccl", "NCCL across NVIDIA GPUs (MLX_RANK, MLX_WORLD_SIZE, NCCL_HOST_IP, NCCL_PORT)"),
    Jaccl => ("jaccl", "JACCL over RDMA between Macs (Thunderbolt 5)"),
});

impl Backend {
    /// The backend a launcher's environment variables name (`lookup` reads one), `None` for a
    /// process started on its own.
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Backend {
        let set = |name: &str| lookup(name).is_some_and(|v| !v.is_empty());
        if set("MLX_HOSTFILE") {
            Backend::Ring
        } else if set("NCCL_HOST_IP") {
            Backend::Nccl
        } else if set("MLX_JACCL_COORDINATOR") || set("MLX_IBV_DEVICES") {
            Backend::Jaccl
        } else if ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"].iter().any(|v| lookup(v).and_then(|s| s.parse::<u32>().ok()).is_some_and(|n| n > 1)) {
            Backend::Mpi
        } else {
            Backend::None
        }
    }

    /// Resolves `Auto` against the process environment.
    pub fn resolve(self) -> Backend {
        match self {
            Backend::Auto => Backend::from_environment(|name| std::env::var(name).ok()),
            other => other,
        }
    }

    /// What the environment must hold for this backend, for errors.
    fn needs(self) -> &'static str {
        match self {
            Backend::Ring => "MLX_RANK and MLX_HOSTFILE (a JSON list of [\"ip:port\"] per rank), as `mlx.launch --backend ring` or `mlxbench launch` set them",
            Backend::Mpi => "a start by mpirun, with libmpi where MLX finds it (MLX_MPI_LIBNAME)",
            Backend::Nccl => "MLX_RANK, MLX_WORLD_SIZE, NCCL_HOST_IP and NCCL_PORT (as `mlx.launch --backend nccl` sets them), a CUDA MLX and libnccl",
            Backend::Jaccl => "MLX_RANK, MLX_JACCL_COORDINATOR and MLX_IBV_DEVICES (as `mlx.launch --backend jaccl` sets them)",
            Backend::Any | Backend::Auto | Backend::None => "a launcher (mlx.launch, mpirun or mlxbench launch)",
        }
    }
}

/// An MLX group handle, freed once when the last [`Group`] clone goes.
struct Handle(mlx_sys::mlx_distributed_group);

// SAFETY: an MLX group is a shared pointer to a backend object that MLX uses from any thread
// (its collectives run on MLX's streams); the handle itself is never mutated after creation.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from `mlx_distributed_init` and is freed exactly once.
        unsafe {
            mlx_sys::mlx_distributed_group_free(self.0);
        }
    }
}

/// A group of processes started together, each with its rank.
#[derive(Clone)]
pub struct Group {
    handle: Arc<Handle>,
    backend: Backend,
    rank: usize,
    size: usize,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Group(rank {} of {}, {})", self.rank, self.size, self.backend)
    }
}

thread_local! {
    /// MLX's error message, caught while one of our raw calls runs.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

extern "C" fn catch_error(message: *const c_char, _data: *mut c_void) {
    // SAFETY: MLX passes a NUL-terminated message that lives for the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    CAUGHT.with(|caught| *caught.borrow_mut() = Some(text));
}

extern "C" {
    /// mlx-rs's process-wide error handler (exported unmangled), put back after [`with_message`].
    fn default_mlx_error_handler(message: *const c_char, data: *mut c_void);
}

/// Runs a raw mlx-c call with an error handler that keeps MLX's message for us, then puts
/// mlx-rs's handler back. Only for calls made before measuring starts (init), since MLX's
/// handler is process-wide.
fn with_message(call: impl FnOnce() -> i32) -> std::result::Result<(), String> {
    // Any mlx-rs operation registers its handler first, so that ours is the one swapped out.
    let _ = Array::from_f32(0.0).as_dtype(Dtype::Float32);
    CAUGHT.with(|caught| caught.borrow_mut().take());
    // SAFETY: both handlers have mlx-c's signature and need no data.
    let status = unsafe {
        mlx_sys::mlx_set_error_handler(Some(catch_error), std::ptr::null_mut(), None);
        let status = call();
        mlx_sys::mlx_set_error_handler(Some(default_mlx_error_handler), std::ptr::null_mut(), None);
        status
    };
    let message = CAUGHT.with(|caught| caught.borrow_mut().take());
    match status {
        0 => Ok(()),
        _ => Err(message.unwrap_or_else(|| format!("status {status}"))),
    }
}

/// Whether this MLX was built with `backend` (`Any`: with any backend at all).
pub fn is_available(backend: Backend) -> bool {
    let name = match backend {
        Backend::Auto | Backend::None => return true,
        other => CString::new(other.name()).expect("backend names have no NUL"),
    };
    // SAFETY: a NUL-terminated name; the call only reads it.
    unsafe { mlx_sys::mlx_distributed_is_available(name.as_ptr()) }
}

static CURRENT: OnceLock<Group> = OnceLock::new();

/// The group this process joined with [`join`], when it has more than one rank.
pub fn current() -> Option<&'static Group> {
    CURRENT.get().filter(|g| g.size > 1)
}

/// Joins the group `backend` names (after resolving `Auto`), once per process: `Ok(None)` for a
/// process on its own. A backend this MLX lacks, or whose environment is missing or wrong, is
/// an error saying what it needs.
pub fn join(backend: Backend) -> Result<Option<&'static Group>> {
    if let Some(group) = CURRENT.get() {
        return Ok(Some(group).filter(|g| g.size > 1));
    }
    let backend = backend.resolve();
    if backend == Backend::None {
        return Ok(None);
    }
    let group = Group::init(backend)?;
    Ok(Some(CURRENT.get_or_init(|| group)).filter(|g| g.size > 1))
}

impl Group {
    /// Starts `backend` strictly (an error rather than a group of one when it cannot start).
    pub fn init(backend: Backend) -> Result<Group> {
        let name = match backend {
            Backend::Auto | Backend::None => {
                return Err(Error::InvalidOption(format!("{backend} is not a distributed backend to start")))
            }
            other => other.name(),
        };
        if !is_available(backend) {
            return Err(Error::Distributed(format!(
                "this MLX has no {name} backend (built without it{}); it needs {}",
                if backend == Backend::Mpi { ", or libmpi was not found" } else { "" },
                backend.needs()
            )));
        }
        if backend == Backend::Ring {
            match std::env::var_os("MLX_HOSTFILE") {
                Some(path) if !std::path::Path::new(&path).is_file() => {
                    return Err(Error::Distributed(format!(
                        "MLX_HOSTFILE names {}, which is not a file; the ring backend needs {}",
                        std::path::Path::new(&path).display(),
                        backend.needs()
                    )))
                }
                _ => {}
            }
        }
        let c_name = CString::new(name).expect("backend names have no NUL");
        // SAFETY: `handle` is a fresh group that init fills on success; freed on failure.
        let mut handle = unsafe { mlx_sys::mlx_distributed_group_new() };
        let started = with_message(|| unsafe { mlx_sys::mlx_distributed_init(&mut handle, true, c_name.as_ptr()) });
        if let Err(message) = started {
            unsafe {
                mlx_sys::mlx_distributed_group_free(handle);
            }
            return Err(Error::Distributed(format!("MLX could not start its {name} backend: {message}; it needs {}", backend.needs())));
        }
        let handle = Handle(handle);
        // SAFETY: a live group.
        let (rank, size) = unsafe { (mlx_sys::mlx_distributed_group_rank(handle.0), mlx_sys::mlx_distributed_group_size(handle.0)) };
        if rank < 0 || size < 1 || rank >= size {
            return Err(Error::Distributed(format!("MLX's {name} backend reported rank {rank} of {size}")));
        }
        Ok(Group { handle: Arc::new(handle), backend, rank: rank as usize, size: size as usize })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs one mlx-c collective that fills an array.
    fn collective(&self, what: &str, call: impl FnOnce(*mut mlx_sys::mlx_array, mlx_sys::mlx_stream) -> i32) -> Result<Array> {
        let stream = Stream::thread_local_or_default();
        // SAFETY: every caller passes an mlx-c collective, which writes its result to `res`.
        unsafe { ops::filled_by(|res| call(res, stream.as_ptr())) }
            .ok_or_else(|| Error::Distributed(format!("MLX could not build {what} over the {} group of {}", self.backend, self.size)))
    }

    /// The element-wise sum of `x` over every rank (lazy, like any MLX operation).
    pub fn all_sum(&self, x: &Array) -> Result<Array> {
        self.collective("an all-sum", |res, s| unsafe { mlx_sys::mlx_distributed_all_sum(res, x.as_ptr(), self.handle.0, s) })
    }

    /// Every rank's `x`, concatenated along the first axis in rank order.
    pub fn all_gather(&self, x: &Array) -> Result<Array> {
        self.collective("an all-gather", |res, s| unsafe { mlx_sys::mlx_distributed_all_gather(res, x.as_ptr(), self.handle.0, s) })
    }

    /// Sends `x` to rank `dst`; evaluate the result to send.
    pub fn send(&self, x: &Array, dst: usize) -> Result<Array> {
        self.check_peer(dst)?;
        self.collective("a send", |res, s| unsafe { mlx_sys::mlx_distributed_send(res, x.as_ptr(), dst as i32, self.handle.0, s) })
    }

    /// Receives from rank `src` an array shaped and typed like `like`.
    pub fn recv_like(&self, like: &Array, src: usize) -> Result<Array> {
        self.check_peer(src)?;
        self.collective("a receive", |res, s| unsafe { mlx_sys::mlx_distributed_recv_like(res, like.as_ptr(), src as i32, self.handle.0, s) })
    }

    fn check_peer(&self, peer: usize) -> Result<()> {
        if peer >= self.size || peer == self.rank {
            return Err(Error::Distributed(format!("rank {} cannot exchange with rank {peer} in a group of {}", self.rank, self.size)));
        }
        Ok(())
    }

    /// One integer per rank, in rank order (every rank gets all of them), e.g. each rank's peak
    /// memory. Collective: every rank must call it.
    pub fn gather_u64(&self, value: u64) -> Result<Vec<u64>> {
        // As two 32-bit halves: the ring backend sums and gathers 32-bit integers on every build.
        let halves = Array::from_slice(&[(value >> 32) as u32, value as u32], &[1, 2]);
        let gathered = self.all_gather(&halves)?;
        gathered.eval()?;
        let flat: Vec<u32> = gathered.as_slice::<u32>().to_vec();
        Ok(flat.chunks(2).map(|h| (u64::from(h[0]) << 32) | u64::from(h[1])).collect())
    }
}

/// What a record says about the group that measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub backend: Backend,
    /// Ranks in the group.
    pub size: usize,
    /// Each rank's peak memory over the configuration's trials (bytes, rank order).
    pub peak_memory_bytes: Vec<u64>,
}
