//! Named fault points, so tests can kill, pause, fail or panic `pulso run` at an exact step.
//!
//! `PULSO_FAULT=NAME[@N][:ACTION]` arms one point: the N-th time (default 1st) the run passes
//! `NAME`, it performs ACTION: `kill` (default; SIGKILL to itself, like `kill -9` or the OOM
//! killer), `pause` (creates the file named by `PULSO_FAULT_READY`, if set, and sleeps until it
//! is killed), `wait` (creates that file, then carries on once the test deletes it: two runs
//! interleaved at an exact step), `error` (the step fails as if the disk were full) or `panic`.
//! Unset, a point costs one relaxed atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Kill,
    Pause,
    Wait,
    Error,
    Panic,
}

#[derive(Debug)]
struct Armed {
    name: String,
    hit: u64,
    action: Action,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("PULSO_FAULT").ok()?;
            parse(&spec)
        })
        .as_ref()
}

fn parse(spec: &str) -> Option<Armed> {
    let spec = spec.trim();
    if spec.is_empty() {
        return None;
    }
    let (point, action) = match spec.rsplit_once(':') {
        Some((p, a)) if matches!(a, "kill" | "pause" | "wait" | "error" | "panic") => (p, a),
        _ => (spec, "kill"),
    };
    let (name, hit) = match point.split_once('@') {
        Some((n, h)) => (n, h.parse().ok()?),
        None => (point, 1),
    };
    let action = match action {
        "pause" => Action::Pause,
        "wait" => Action::Wait,
        "error" => Action::Error,
        "panic" => Action::Panic,
        _ => Action::Kill,
    };
    Some(Armed {
        name: name.to_string(),
        hit,
        action,
        seen: AtomicU64::new(0),
    })
}

/// Passes the fault point `name`. Returns an error only when armed with `:error`.
pub fn point(name: &str) -> std::io::Result<()> {
    let Some(a) = armed() else {
        return Ok(());
    };
    if a.name != name || a.seen.fetch_add(1, Ordering::Relaxed) + 1 != a.hit {
        return Ok(());
    }
    match a.action {
        Action::Kill => {
            // SAFETY: sending a signal to our own pid.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            loop {
                std::thread::park();
            }
        }
        Action::Pause => {
            if let Ok(p) = std::env::var("PULSO_FAULT_READY") {
                let _ = std::fs::write(p, name);
            }
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Action::Wait => {
            let ready = std::env::var("PULSO_FAULT_READY").ok();
            if let Some(p) = &ready {
                let _ = std::fs::write(p, name);
            }
            while ready
                .as_ref()
                .is_some_and(|p| std::path::Path::new(p).exists())
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(())
        }
        Action::Error => Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!("no space left on device (injected at fault point {name})"),
        )),
        Action::Panic => panic!("injected panic at fault point {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let a = parse("commit:claimed").unwrap();
        assert_eq!(
            (a.name.as_str(), a.hit, a.action),
            ("commit:claimed", 1, Action::Kill)
        );
        let a = parse("write:batch@3:pause").unwrap();
        assert_eq!(
            (a.name.as_str(), a.hit, a.action),
            ("write:batch", 3, Action::Pause)
        );
        let a = parse("commit:synced:wait").unwrap();
        assert_eq!((a.name.as_str(), a.action), ("commit:synced", Action::Wait));
        let a = parse("read:open:error").unwrap();
        assert_eq!((a.name.as_str(), a.action), ("read:open", Action::Error));
        assert!(parse("").is_none());
        assert!(parse("x@notanumber").is_none());
    }
}
