//! `$NAME`, `${NAME}` and `$$` in a job's values and settings, with Go's `os.Expand` rules, as
//! the official runner expands them: an unknown name is the empty string, `$$` is a literal `$`
//! (when the lookup says so), other special names (`$1`, `$?`) expand to nothing, a bare `$` is
//! kept and bad syntax (`${}`) is eaten. The helper expands job variables with it, the worker
//! the settings a job's variables may appear in.

fn is_shell_special(b: u8) -> bool {
    matches!(b, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn is_alnum(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// The name after a `$` and how many bytes it spans (Go's `os.Expand` rules).
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return ("", 2); // "${}": bad syntax, eaten
                }
                return (&s[1..i], i + 1);
            }
        }
        return ("", 1); // "${" unterminated: the "${" is eaten
    }
    if is_shell_special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b.iter().take_while(|b| is_alnum(**b)).count();
    (&s[..n], n)
}

/// Expands `$NAME`, `${NAME}` and `$$` in `value` with `get` (Go `os.Expand` semantics, as the
/// official runner; special names other than `$` expand to nothing).
pub fn expand(value: &str, get: &dyn Fn(&str) -> String) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0; // start of the not yet copied text
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&value[i..j]);
            let (name, w) = shell_name(&value[j + 1..]);
            if name.is_empty() && w > 0 {
                // invalid syntax: eaten
            } else if name.is_empty() {
                out.push('$');
            } else if name.len() == 1 && is_shell_special(name.as_bytes()[0]) && name != "$" {
                // $1, $?, …: nothing
            } else {
                out.push_str(&get(name));
            }
            j += w + 1;
            i = j;
        } else {
            j += 1;
        }
    }
    out.push_str(&value[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_the_official_runner() {
        let get = |n: &str| match n {
            "A" => "aa".to_string(),
            "$" => "$".to_string(),
            _ => String::new(),
        };
        assert_eq!(expand("x$A-${A}y", &get), "xaa-aay");
        assert_eq!(expand("cost: $$5 $", &get), "cost: $5 $");
        assert_eq!(expand("$UNKNOWN/bin", &get), "/bin");
        assert_eq!(expand("a$1b ${}c ${A", &get), "ab c A");
        assert_eq!(expand("100% $ sure", &get), "100% $ sure");
        assert_eq!(expand("é$A€", &get), "éaa€");
    }
}
