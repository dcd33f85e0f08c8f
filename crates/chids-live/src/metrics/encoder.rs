//! The one Prometheus text encoder (exposition format 0.0.4) of chids:
//! `monitor`'s and the agent's metrics are both written through it, so
//! escaping, `# HELP` / `# TYPE` lines and number formats are the same.

use std::fmt::Write as _;

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A family whose samples are one per row of `T`: its name, its help,
/// and a row's value.
pub type Column<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// A sample's value, as Prometheus writes numbers.
pub trait SampleValue {
    fn write_to(&self, out: &mut String);
}

impl SampleValue for u64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for usize {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// Builds one exposition: families, each followed by its samples.
#[derive(Default)]
pub struct Encoder {
    out: String,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Encoder {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n"),
            kind.name()
        );
        self
    }

    /// One sample line: `name{labels} value`.
    pub fn sample<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(K, V)],
        value: impl SampleValue,
    ) -> &mut Encoder {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k.as_ref());
                self.out.push_str("=\"");
                escape_into(&mut self.out, v.as_ref());
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        value.write_to(&mut self.out);
        self.out.push('\n');
        self
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl SampleValue) {
        self.family(name, kind, help);
        self.sample::<&str, &str>(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Label values: backslash, double quote and newline escaped.
fn escape_into(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_escaped_labels_and_numbers() {
        let mut e = Encoder::new();
        e.family("x_total", Kind::Counter, "Things.\nMore.")
            .sample("x_total", &[("a", "q\"\\\n")], 3u64)
            .sample("x_total", &[("a", "b"), ("c", "d")], 0.5);
        e.single("up", Kind::Gauge, "Up.", f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things.\\nMore.\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\"} 3\nx_total{a=\"b\",c=\"d\"} 0.5\n# HELP up Up.\n# TYPE up gauge\nup +Inf\n"
        );
    }
}
