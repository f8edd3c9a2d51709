//! Tokens for matching: Unicode-lowercased, Latin diacritics folded.
//!
//! "Café Åkerö's" becomes `["cafe", "akeros"]`: letters and digits form
//! tokens, apostrophes join (so "McDonald's" is one token), everything else
//! separates. Folding maps the Latin-1 and Latin Extended-A letters with
//! diacritics (and Vietnamese ones) to their base letters (å, ä → a; ö, ø → o; é → e; æ → ae;
//! ß → ss) and drops combining marks, so text written either way matches.
//! For Swedish this means "kottbullar" finds "Köttbullar", at the price of
//! "ost" also matching "öst"; a search box is better forgiving than exact.
//! Other scripts are lowercased and otherwise kept as they are.

/// Longest token kept, in characters; the rest of a longer run is dropped.
/// Bounds the cost of comparing tokens.
pub const MAX_TOKEN_CHARS: usize = 64;

/// The tokens of `s`, in order, duplicates kept.
pub fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_chars = 0;
    let mut folded = String::new();
    for c in s.chars() {
        if is_joiner(c) {
            continue;
        }
        folded.clear();
        for lower in c.to_lowercase() {
            fold_into(lower, &mut folded);
        }
        if folded.is_empty() {
            // A combining mark: part of the previous letter.
            continue;
        }
        for f in folded.chars() {
            if f.is_alphanumeric() {
                if cur_chars < MAX_TOKEN_CHARS {
                    cur.push(f);
                    cur_chars += 1;
                }
            } else if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                cur_chars = 0;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `s` normalised for whole-value comparison (cuisine filters): its tokens
/// joined by single spaces, so "Tex-Mex", "tex mex" and " TEX  MEX " agree.
pub fn phrase(s: &str) -> String {
    tokens(s).join(" ")
}

/// Characters removed without separating tokens.
fn is_joiner(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}' | '\u{00AD}')
}

fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// Appends the folded form of the lowercase `c` to `out`.
fn fold_into(c: char, out: &mut String) {
    if is_combining_mark(c) {
        return;
    }
    let base = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' | 'ð' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ơ' => 'o',
        'ư' => 'u',
        // Vietnamese letters with tone marks, ordered by base letter.
        '\u{1EA0}'..='\u{1EB7}' => 'a',
        '\u{1EB8}'..='\u{1EC7}' => 'e',
        '\u{1EC8}'..='\u{1ECB}' => 'i',
        '\u{1ECC}'..='\u{1EE3}' => 'o',
        '\u{1EE4}'..='\u{1EF1}' => 'u',
        '\u{1EF2}'..='\u{1EF9}' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        'æ' => return out.push_str("ae"),
        'œ' => return out.push_str("oe"),
        'ß' => return out.push_str("ss"),
        'þ' => return out.push_str("th"),
        other => other,
    };
    out.push(base);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        assert_eq!(tokens(input), expected, "{input:?}");
    }

    #[test]
    fn tokenising_and_folding() {
        check("", &[]);
        check("  ,. ", &[]);
        check("Pizza Hut", &["pizza", "hut"]);
        check("Café Åkerö's", &["cafe", "akeros"]);
        check("KÖTTBULLAR med Lingon", &["kottbullar", "med", "lingon"]);
        check("Räksmörgås", &["raksmorgas"]);
        check("McDonald’s", &["mcdonalds"]);
        check("Tex-Mex & Grill 24/7", &["tex", "mex", "grill", "24", "7"]);
        check("Smørrebrød, Æbleskiver", &["smorrebrod", "aebleskiver"]);
        check("Straße", &["strasse"]);
        // Decomposed input (e + combining acute) folds like composed.
        check("Cafe\u{301} Noir", &["cafe", "noir"]);
        check("Phở Bò Huế", &["pho", "bo", "hue"]);
        check("BÚN CHẢ", &["bun", "cha"]);
        check("寿司 Sushi", &["寿司", "sushi"]);
        check("ΣΟΥΒΛΑΚΙ", &["σουβλακι"]);
        check("İstanbul", &["istanbul"]);
    }

    #[test]
    fn long_runs_are_truncated() {
        let long = "a".repeat(200);
        let t = tokens(&format!("{long} b"));
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].chars().count(), MAX_TOKEN_CHARS);
        assert_eq!(t[1], "b");
    }

    #[test]
    fn phrases() {
        assert_eq!(phrase(" Tex-Mex "), "tex mex");
        assert_eq!(phrase("TEX  MEX"), "tex mex");
        assert_eq!(phrase("Smörgåsbord"), "smorgasbord");
    }
}
