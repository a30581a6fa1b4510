//! Task names as folder and file names.

/// The name of a task's working folder and the stem of its log files.
///
/// The mapping is *injective*: two different task names never share a
/// folder or a log. ASCII letters, digits, `-`, `_` and `.` stay as they
/// are (so `encode-chunk-0001` is its own folder name); every other byte of
/// the name's UTF-8, `%` included, becomes `%XX` (upper-case hex), and so
/// does a leading `.` (no hidden files, no `.` or `..`). `a/b` is `a%2Fb`
/// and `a_b` stays `a_b`.
///
/// Why an encoding rather than refusing names that collide once
/// sanitised: a name's folder then depends on that name alone, not on the
/// other tasks of the job, so no task added later (an expansion) can ever
/// collide with one that already ran, and no check has to remember every
/// name. The escape character is `%` because it is the convention readers
/// know, and it means nothing to a shell or to a file system.
///
/// ```
/// use tessera_types::folder_name;
/// assert_eq!(folder_name("encode-chunk-0001"), "encode-chunk-0001");
/// assert_eq!(folder_name("a/b"), "a%2Fb");
/// assert_eq!(folder_name("a_b"), "a_b");
/// assert_eq!(folder_name("../etc"), "%2E.%2Fetc");
/// ```
pub fn folder_name(task: &str) -> String {
    let mut out = String::with_capacity(task.len());
    for (i, b) in task.bytes().enumerate() {
        let tame = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if tame && !(i == 0 && b == b'.') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 0xf));
        }
    }
    out
}

fn hex(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble)])
}

#[cfg(test)]
mod tests {
    use super::folder_name;
    use std::collections::HashMap;

    #[test]
    fn folder_names_of_different_tasks_never_collide() {
        // The collisions the old mapping (every other char to '_') had.
        let names = [
            "a/b", "a_b", "a b", "a%2Fb", "a%b", "._x", "_.x", ".x", "%2Ex", "é", "%C3%A9", "..",
            ".", "_", "%", "a:b", "a\\b", "a\0b",
        ];
        let mut seen = HashMap::new();
        for n in names {
            let f = folder_name(n);
            if let Some(other) = seen.insert(f.clone(), n) {
                panic!("{n:?} and {other:?} share the folder {f:?}");
            }
            assert!(
                !f.contains('/') && !f.starts_with('.') && !f.is_empty(),
                "{f:?}"
            );
        }
        assert_eq!(folder_name("encode-chunk-0001"), "encode-chunk-0001");
        assert_eq!(folder_name("my_task.v2"), "my_task.v2");
        assert_eq!(folder_name(".."), "%2E.");
        assert_eq!(folder_name("é"), "%C3%A9");
    }
}
