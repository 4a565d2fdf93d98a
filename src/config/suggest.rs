//! "did you mean 'X'?" for unknown keywords: the closest known word by edit distance.

/// The candidate closest to `word`, if it is close enough to be a plausible typo
/// (at most a third of the word's length in edits, and at least one).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" (did you mean 'X'?)"` or an empty string, ready to append to a message.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, which
/// is what typing mistakes look like ("wieght").
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(distance("wieght", "weight"), 1);
        assert_eq!(
            closest("wieght", ["weight", "rise", "fall"]),
            Some("weight")
        );
    }

    #[test]
    fn far_words_get_no_suggestion() {
        assert_eq!(closest("frobnicate", ["weight", "rise"]), None);
        assert_eq!(hint("xyz", ["weight"]), "");
    }

    #[test]
    fn picks_the_closest() {
        assert_eq!(
            closest("defaut_backend", ["default_backend", "backend"]),
            Some("default_backend")
        );
        assert_eq!(closest("tiemout", ["timeout", "mode"]), Some("timeout"));
        assert_eq!(hint("balanse", ["balance"]), " (did you mean 'balance'?)");
    }
}
