//! The result table: one row per figure, one column per worker, then each other worker's
//! figure divided by ours, then where the figure comes from (pure).

/// One figure for every worker, in column order; the first column is ours.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) values: Vec<Option<f64>>,
    pub(crate) decimals: usize,
    pub(crate) source: &'static str,
}

impl Row {
    pub(crate) fn new(
        label: impl Into<String>,
        decimals: usize,
        source: &'static str,
        values: Vec<Option<f64>>,
    ) -> Self {
        Self {
            label: label.into(),
            values,
            decimals,
            source,
        }
    }
}

/// `value / ours`, when both are known and ours is not zero.
pub(crate) fn ratio(value: Option<f64>, ours: Option<f64>) -> Option<f64> {
    match (value, ours) {
        (Some(v), Some(o)) if o != 0.0 => Some(v / o),
        _ => None,
    }
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The table as text: `columns` name the workers, ours first.
pub(crate) fn render(columns: &[&str], rows: &[Row]) -> String {
    let mut header: Vec<String> = vec!["figure".to_owned()];
    header.extend(columns.iter().map(|c| (*c).to_owned()));
    header.extend(columns.iter().skip(1).map(|c| format!("{c} / ours")));
    header.push("source".to_owned());
    let mut lines: Vec<Vec<String>> = vec![header];
    for r in rows {
        let mut line = vec![r.label.clone()];
        line.extend(r.values.iter().map(|v| cell(*v, r.decimals)));
        let ours = r.values.first().copied().flatten();
        line.extend(r.values.iter().skip(1).map(|v| cell(ratio(*v, ours), 2)));
        line.push(r.source.to_owned());
        lines.push(line);
    }
    let cols = lines[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            lines
                .iter()
                .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                // Labels and sources read left to right; numbers line up on the right.
                if i == 0 || i == cols - 1 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_need_both_figures() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(None, Some(2.0)), None);
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    }

    #[test]
    fn renders_values_ratios_and_sources_aligned() {
        let rows = [
            Row::new("throughput", 1, "E", vec![Some(100.0), Some(50.0)]),
            Row::new("p50", 3, "P", vec![None, Some(0.25)]),
        ];
        let text = render(&["ours", "go"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "figure       ours     go  go / ours  source");
        assert_eq!(lines[1], "----------  -----  -----  ---------  ------");
        assert_eq!(lines[2], "throughput  100.0   50.0       0.50  E");
        assert_eq!(lines[3], "p50             -  0.250          -  P");
    }
}
