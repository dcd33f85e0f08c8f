//! `--container ID`: which events of a capture belong to the container the
//! user named, by its full 64-hex id or any prefix of it that is unique in
//! the capture.

use std::collections::BTreeSet;

/// How many other container ids an error message lists.
const LISTED: usize = 8;

/// Streams a capture's container ids past one `--container` value.
pub(crate) struct ContainerFilter<'a> {
    want: String,
    given: &'a str,
    /// The one id the prefix selected so far.
    chosen: Option<String>,
    /// Up to [`LISTED`] other ids seen, for the "selects nothing" message.
    others: BTreeSet<String>,
}

impl<'a> ContainerFilter<'a> {
    pub(crate) fn new(given: &'a str) -> Self {
        ContainerFilter {
            want: given.trim().to_ascii_lowercase(),
            given,
            chosen: None,
            others: BTreeSet::new(),
        }
    }

    /// Whether an event of container `id` is kept; an error when a second,
    /// different container matches the prefix too.
    pub(crate) fn keep(&mut self, id: Option<&str>) -> Result<bool, String> {
        let Some(id) = id else { return Ok(false) };
        if let Some(c) = &self.chosen {
            if c == id {
                return Ok(true);
            }
        }
        if !id.starts_with(self.want.as_str()) {
            if self.others.len() < LISTED && !self.others.contains(id) {
                self.others.insert(id.to_string());
            }
            return Ok(false);
        }
        match &self.chosen {
            None => {
                self.chosen = Some(id.to_string());
                Ok(true)
            }
            Some(c) => Err(format!(
                "--container {} is ambiguous: it matches {c} and {id}; give more of the id",
                self.given
            )),
        }
    }

    /// An error when the filter selected nothing, naming it and the
    /// containers the capture does hold.
    pub(crate) fn finish(self) -> Result<(), String> {
        if self.chosen.is_some() {
            return Ok(());
        }
        let held = if self.others.is_empty() {
            "it records no container".to_string()
        } else {
            let ids: Vec<&str> = self.others.iter().map(|s| &s[..s.len().min(12)]).collect();
            format!("it holds {}", ids.join(", "))
        };
        Err(format!(
            "--container {} selects no event of this capture ({held})",
            self.given
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "697956520d891b5cb0e215093970c7338a0e3e2e4a3a3c7e5b7a7b2f3b5d0c11";
    const B: &str = "6979aa520d891b5cb0e215093970c7338a0e3e2e4a3a3c7e5b7a7b2f3b5d0c11";

    #[test]
    fn the_full_id_and_unique_prefixes_select() {
        for given in [A, &A[..12], "69795", &A.to_ascii_uppercase()] {
            let mut f = ContainerFilter::new(given);
            assert_eq!(f.keep(Some(A)), Ok(true), "{given}");
            assert_eq!(f.keep(Some(B)), Ok(false), "{given}");
            assert_eq!(f.keep(None), Ok(false));
            assert!(f.finish().is_ok());
        }
    }

    #[test]
    fn an_ambiguous_prefix_is_an_error() {
        let mut f = ContainerFilter::new("6979");
        assert_eq!(f.keep(Some(A)), Ok(true));
        let e = f.keep(Some(B)).unwrap_err();
        assert!(e.contains("--container 6979 is ambiguous"), "{e}");
    }

    #[test]
    fn selecting_nothing_is_an_error_naming_the_filter() {
        let mut f = ContainerFilter::new("deadbeef");
        f.keep(Some(A)).unwrap();
        let e = f.finish().unwrap_err();
        assert!(e.contains("--container deadbeef selects no event"), "{e}");
        assert!(e.contains("697956520d89"), "{e}");
        let e = ContainerFilter::new("x").finish().unwrap_err();
        assert!(e.contains("records no container"), "{e}");
    }
}
