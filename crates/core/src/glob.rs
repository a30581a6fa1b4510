//! Shell-style globs over task names.

/// Shell-style glob over the whole name: `*` any run, `?` one char,
/// `[abc]`/`[a-z]`/`[!x]` a class.
pub fn glob_match(pat: &[char], name: &str) -> bool {
    let text: Vec<char> = name.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class_match(pat, p, text[t]) {
                        if ok {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == '[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `pat[start] == '['`; returns
/// (matched, index after the class), or None when the class is unterminated.
fn class_match(pat: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pat.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
            hit |= pat[i] <= c && c <= pat[i + 2];
            i += 3;
        } else {
            hit |= pat[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str, n: &str) -> bool {
        glob_match(&p.chars().collect::<Vec<_>>(), n)
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(g("encode-*", "encode-0001"));
        assert!(g("encode-*", "encode-"));
        assert!(!g("encode-*", "encoder"));
        assert!(g("*-audio", "encode-audio"));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "ac"));
        assert!(g("chunk-[0-3]", "chunk-2"));
        assert!(!g("chunk-[0-3]", "chunk-7"));
        assert!(g("chunk-[!0-3]", "chunk-7"));
        assert!(g("*a*b*", "xxaxxbxx"));
        assert!(!g("*a*b", "xxaxxbxx"));
        assert!(g("[", "["));
    }
}
