//! What Linux says about a process, by pid, read from /proc: whether it has
//! exited, and when it started (which tells a pid reused since apart).

/// Gone, or a zombie. An exiting process's memory, and with it its
/// cmdline, is freed before its files, so one whose cmdline reads empty may
/// still hold its ports for a moment: its state says when it is done.
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => after_comm(&stat)
            .and_then(|rest| rest.chars().next())
            .is_none_or(|state| matches!(state, 'Z' | 'X')),
    }
}

/// When the process started, in clock ticks since boot (field 22 of
/// /proc/<pid>/stat); `None` when there is no such process to see.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after `pid (comm)`, starting with the state (field 3).
    after_comm(&stat)?.split_whitespace().nth(19)?.parse().ok()
}

/// The stat line after `pid (comm) `: comm may hold spaces and parentheses.
fn after_comm(stat: &str) -> Option<&str> {
    stat.rsplit_once(") ").map(|(_, rest)| rest)
}

/// This boot of this machine and this process's pid namespace: a pid means
/// the same process only where both are the same. `None` off Linux, or when
/// /proc hides other users' processes (`hidepid`), where a pid cannot be
/// checked at all.
pub fn pid_scope() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    // PID 1 is always there; not seeing it means /proc hides processes.
    std::fs::metadata("/proc/1/stat").ok()?;
    Some(format!("{}/{}", boot.trim(), namespace.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_has_exited_once_a_zombie_or_gone_and_its_start_time_is_its_own() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(!exited(pid), "a sleeping process runs");
        let started = start_time(pid).expect("a running process has a start time");
        assert!(started >= start_time(std::process::id()).unwrap());
        child.kill().unwrap();
        for _ in 0..50 {
            if exited(pid) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(exited(pid), "a killed, unreaped process is a zombie");
        child.wait().unwrap();
        assert!(exited(pid), "a reaped process is gone");
        assert_eq!(start_time(pid), None);
        assert!(pid_scope().is_some_and(|s| s.contains("pid:[")));
    }
}
