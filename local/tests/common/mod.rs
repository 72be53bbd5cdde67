//! What both process tests ask of the system.

/// A process counts as alive unless it is gone or a zombie: a SIGKILLed child
/// of a dead parent is reparented to pid 1, which here may never reap it.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(") ").map(|(_, r)| &r[..1]),
            Some("Z" | "X")
        ),
        Err(_) => false,
    }
}
