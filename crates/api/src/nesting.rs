//! How deep a job spec nests, measured on its bytes before any parser
//! sees them.
//!
//! The YAML parser under `serde_yaml` (libyaml) does work proportional to
//! the depth of open flow collections (`[`, `{`) for every token: 40,000
//! nested `[` took 3.2 s of a core (`{a: ` x 40,000: 8.4 s) before
//! `serde_yaml` refused it at depth 128. Block nesting (indentation,
//! `- - -`) costs it linear time (40,000 levels: 9 ms) and `serde_yaml`
//! refuses it at depth 128, so only flow nesting is measured in YAML. JSON
//! is measured exactly (strings skipped), so both formats are held to the
//! same [`MAX_SPEC_DEPTH`].

/// How deep a job spec may nest. A spec needs about 6 levels (job, tasks,
/// task, action, argv); 64 leaves room for any hand-written flow style.
pub const MAX_SPEC_DEPTH: usize = 64;

/// The line (from 1) where a JSON document first nests deeper than `max`.
pub(crate) fn json_too_deep(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The line (from 1) where a YAML document's flow collections first nest
/// deeper than `max`. Quoted scalars, comments and block scalars (`|`,
/// `>`) are skipped; a `[` or `{` counts where YAML reads it as the start
/// of a collection (where a node starts, or anywhere inside a flow
/// collection), so brackets in plain text (`echo [a`) do not. It may
/// over-count (a continuation line of a plain scalar that starts with
/// `[`), never under-count.
pub(crate) fn yaml_too_deep(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1usize;
    // Whether the next non-blank byte may start a node.
    let mut node_start = true;
    let mut prev_blank = true;
    let mut quote: Option<u8> = None;
    // The indentation of the line whose block scalar is being skipped.
    let mut block_scalar: Option<usize> = None;
    let mut line_indent = 0usize;
    let mut line_start = true;
    let mut i = 0;
    let to_line_end = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i] != b'\n' {
            *i += 1;
        }
    };
    while i < bytes.len() {
        if line_start {
            line_start = false;
            let start = i;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            let indent = i - start;
            let blank = matches!(bytes.get(i), None | Some(b'\n' | b'\r'));
            if let Some(opened) = block_scalar {
                if blank || indent > opened {
                    to_line_end(&mut i);
                    continue;
                }
                block_scalar = None;
            }
            line_indent = indent;
            if quote.is_none() && depth == 0 {
                node_start = true;
            }
            prev_blank = true;
            continue;
        }
        let b = bytes[i];
        if b == b'\n' {
            line += 1;
            line_start = true;
            i += 1;
            continue;
        }
        if let Some(q) = quote {
            match b {
                b'\\' if q == b'"' => i += 1,
                b'\'' if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                _ if b == q => {
                    quote = None;
                    node_start = false;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        let next_blank = matches!(bytes.get(i + 1), None | Some(b' ' | b'\t' | b'\n' | b'\r'));
        match b {
            b' ' | b'\t' | b'\r' => {
                prev_blank = true;
                i += 1;
                continue;
            }
            b'#' if prev_blank => {
                to_line_end(&mut i);
                continue;
            }
            b'"' | b'\'' if node_start => quote = Some(b),
            b'[' | b'{' if depth > 0 || node_start => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
                node_start = true;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                node_start = false;
            }
            b',' if depth > 0 => node_start = true,
            b'-' | b'?' | b':' if next_blank => node_start = true,
            b':' if depth > 0 => node_start = true,
            b'&' | b'!' | b'*' if node_start => {
                // An anchor, tag or alias: a node may follow it.
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                continue;
            }
            b'|' | b'>' if node_start && depth == 0 => {
                block_scalar = Some(line_indent);
                to_line_end(&mut i);
                continue;
            }
            _ => node_start = false,
        }
        prev_blank = false;
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!(
            "name: j\nparams: {}{}\ntasks: []\n",
            open.repeat(n),
            close.repeat(n)
        )
    }

    #[test]
    fn flow_nesting_is_measured_to_the_limit() {
        assert_eq!(yaml_too_deep(nested("[", "]", 64).as_bytes(), 64), None);
        assert_eq!(yaml_too_deep(nested("[", "]", 65).as_bytes(), 64), Some(2));
        assert_eq!(
            yaml_too_deep(nested("{a: ", "}", 40_000).as_bytes(), 64),
            Some(2)
        );
        let multi_line =
            "name: j\ntasks:\n  - {name: a,\n     action: [\n".to_string() + &"[\n".repeat(70);
        assert_eq!(yaml_too_deep(multi_line.as_bytes(), 64), Some(67));
    }

    #[test]
    fn brackets_in_text_comments_and_block_scalars_do_not_count() {
        let text = "[".repeat(100);
        let spec = format!(
            "name: j # {text}\n\
             tasks:\n\
             \x20 - name: a\n\
             \x20   action: {{kind: command, argv: [\"echo\", \"{text}\", '{text}''x']}}\n\
             \x20 - name: b\n\
             \x20   action:\n\
             \x20     kind: script\n\
             \x20     script: |\n\
             \x20       if [ -f x ]; then echo {text}; fi\n\
             \n\
             \x20         echo {text}\n\
             \x20   env: {{A: \"echo {text}\"}}\n\
             \x20 - name: c\n\
             \x20   action: {{kind: command, argv: [echo, a]}}\n\
             \x20   env:\n\
             \x20     A: echo a{text}\n\
             \x20   deps: [{{selector: \"re:^[a-b]$\"}}]\n"
        );
        serde_yaml::from_str::<serde_yaml::Value>(&spec).expect("the sample is YAML");
        assert_eq!(yaml_too_deep(spec.as_bytes(), 64), None, "{spec}");
        // ...but what follows a block scalar is measured again.
        let after = format!("{spec}params: {}\n", "[".repeat(65));
        assert!(yaml_too_deep(after.as_bytes(), 64).is_some());
    }

    #[test]
    fn json_nesting_is_measured_exactly() {
        let deep = format!("{{\"p\":{}{}}}", "[".repeat(63), "]".repeat(63));
        assert_eq!(json_too_deep(deep.as_bytes(), 64), None);
        let deeper = format!("{{\"p\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(json_too_deep(deeper.as_bytes(), 64), Some(1));
        let strings = format!("{{\"p\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert_eq!(json_too_deep(strings.as_bytes(), 64), None);
    }
}
