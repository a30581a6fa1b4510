//! What a worker tells the server about its machine.

pub(crate) fn hostname() -> String {
    hostname_or("worker")
}

/// The host name, or `default` when there is none.
pub(crate) fn hostname_or(default: &str) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| default.into())
}

pub(crate) fn memory_mb() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

pub(crate) fn disk_free_mb(dir: &std::path::Path) -> u64 {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return 0;
    };
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid C string and `st` has room for the struct
    // statvfs fills in; it is read only when the call succeeded.
    let st = unsafe {
        if libc::statvfs(c.as_ptr(), st.as_mut_ptr()) != 0 {
            return 0;
        }
        st.assume_init()
    };
    st.f_bavail.saturating_mul(st.f_frsize) / (1024 * 1024)
}

/// GPUs this machine has, as NVIDIA's driver exposes them
/// (`/dev/nvidia0`, `/dev/nvidia1`, ...); 0 without one.
pub(crate) fn gpus() -> u32 {
    gpus_in(std::path::Path::new("/dev"))
}

fn gpus_in(dev: &std::path::Path) -> u32 {
    let Ok(entries) = std::fs::read_dir(dev) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("nvidia"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_are_counted_from_the_driver_device_nodes_only() {
        let dev = tempfile::tempdir().unwrap();
        for n in ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "sda"] {
            std::fs::write(dev.path().join(n), b"").unwrap();
        }
        assert_eq!(gpus_in(dev.path()), 2);
        assert_eq!(gpus_in(&dev.path().join("missing")), 0);
    }
}
