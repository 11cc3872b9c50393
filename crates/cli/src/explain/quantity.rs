//! One quantity of the homework with its question, formula, shape and value, and how it is
//! printed for a person (80 columns) and written as JSON (the schema `check` reads).

use std::fmt::Write as _;

use retroprop_layers::nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// A value of the homework: a matrix, row by row (a scalar is 1×1, a vector a column).
pub type Rows = Vec<Vec<f64>>;

/// The rows of a matrix.
pub fn rows(m: &DMatrix<f64>) -> Rows {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect())
        .collect()
}

/// A matrix from rows (`None` if they are ragged or empty).
pub fn matrix(rows: &Rows) -> Option<DMatrix<f64>> {
    let r = rows.len();
    let c = rows.first()?.len();
    if c == 0 || rows.iter().any(|row| row.len() != c) {
        return None;
    }
    Some(DMatrix::from_fn(r, c, |i, j| rows[i][j]))
}

/// One computed quantity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    /// The question: `"2a"`.
    pub id: String,
    /// The key `check` matches answers by: `"h_a"`.
    pub name: String,
    /// The homework's symbol: `"hᵃ"`.
    pub symbol: String,
    /// Its formula in the homework's notation.
    pub formula: String,
    /// `[rows, columns]`.
    pub shape: [usize; 2],
    /// The value, row by row.
    pub value: Rows,
    /// Central finite differences of the same derivative, for a gradient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<Rows>,
}

impl Quantity {
    /// A quantity from a matrix value.
    pub fn new(id: &str, name: &str, symbol: &str, formula: &str, value: &DMatrix<f64>) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            symbol: symbol.to_string(),
            formula: formula.to_string(),
            shape: [value.nrows(), value.ncols()],
            value: rows(value),
            numeric: None,
        }
    }

    /// A scalar quantity.
    pub fn scalar(id: &str, name: &str, symbol: &str, formula: &str, value: f64) -> Self {
        Self::new(
            id,
            name,
            symbol,
            formula,
            &DMatrix::from_element(1, 1, value),
        )
    }

    /// With its finite-difference estimate.
    pub fn with_numeric(mut self, numeric: &DMatrix<f64>) -> Self {
        self.numeric = Some(rows(numeric));
        self
    }

    /// The value as a matrix.
    pub fn matrix(&self) -> DMatrix<f64> {
        matrix(&self.value).unwrap_or_else(|| DMatrix::zeros(0, 0))
    }

    /// The largest `|analytic − numeric|`, if there is a numeric estimate.
    pub fn numeric_difference(&self) -> Option<f64> {
        let numeric = self.numeric.as_ref()?;
        Some(
            self.value
                .iter()
                .flatten()
                .zip(numeric.iter().flatten())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max),
        )
    }
}

/// The value of the quantity `name` of a computation (one of its own names: always there).
pub fn value_of(quantities: &[Quantity], name: &str) -> DMatrix<f64> {
    quantities
        .iter()
        .find(|q| q.name == name)
        .map(Quantity::matrix)
        .unwrap_or_else(|| panic!("`{name}` is one of the quantities computed"))
}

/// A number for people: up to 6 significant decimals, without trailing zeros (`0.5`, `-1.25`,
/// `0.731059`), scientific notation when tiny or huge.
pub fn number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !(1e-4..1e7).contains(&v.abs()) {
        return format!("{v:.3e}");
    }
    let digits = (6 - v.abs().log10().floor() as i32 - 1).clamp(0, 9) as usize;
    let text = format!("{v:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".to_string() } else { text }
}

/// `[[a, b], [c, d]]`, a scalar as itself, a column as `[a, b]ᵀ`.
pub fn value_text(rows: &Rows) -> String {
    let row = |r: &Vec<f64>| r.iter().map(|&v| number(v)).collect::<Vec<_>>().join(", ");
    match rows.as_slice() {
        [single] if single.len() == 1 => number(single[0]),
        _ if rows.iter().all(|r| r.len() == 1) => {
            format!(
                "[{}]ᵀ",
                rows.iter()
                    .map(|r| number(r[0]))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        _ => format!(
            "[{}]",
            rows.iter()
                .map(|r| format!("[{}]", row(r)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Prints quantities as aligned lines: question, symbol = formula, shape; then the value (and
/// the finite differences), wrapped to 80 columns.
pub fn render(quantities: &[Quantity]) -> String {
    let mut out = String::new();
    for q in quantities {
        let head = format!("{:<5} {} = {}", q.id, q.symbol, q.formula);
        let shape = format!("{}×{}", q.shape[0], q.shape[1]);
        let used = head.chars().count() + shape.chars().count();
        if used + 2 > 80 {
            wrap(&mut out, "", &format!("{head}   {shape}"));
        } else {
            let _ = writeln!(out, "{head}{}{shape}", " ".repeat(80 - used));
        }
        block(&mut out, "      = ", &q.value, "");
        if let (Some(numeric), Some(diff)) = (&q.numeric, q.numeric_difference()) {
            let note = format!("   (finite differences; |difference| ≤ {diff:.1e})");
            block(&mut out, "      ≈ ", numeric, &note);
        }
    }
    out
}

/// A value after `lead` (and `note`): on one line if it fits, else one row per line.
fn block(out: &mut String, lead: &str, value: &Rows, note: &str) {
    let text = value_text(value);
    if lead.chars().count() + text.chars().count() + note.chars().count() <= 80 || value.len() < 2 {
        wrap(out, lead, &format!("{text}{note}"));
        return;
    }
    for (i, row) in value.iter().enumerate() {
        let row = value_text(&vec![row.clone()]);
        let row = &row[1..row.len() - 1];
        let close = if i + 1 == value.len() { "]" } else { "," };
        wrap(
            out,
            if i == 0 { lead } else { "         " },
            &format!("{}{row}{close}", if i == 0 { "[" } else { "" }),
        );
    }
    if !note.is_empty() {
        wrap(out, "       ", note.trim_start());
    }
}

/// Writes `text` after `lead`, continuing on indented lines at 80 columns.
pub fn wrap(out: &mut String, lead: &str, text: &str) {
    let width = 80 - lead.chars().count();
    let mut line = String::new();
    let mut first = true;
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            let _ = writeln!(out, "{}{line}", if first { lead } else { "        " });
            first = false;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{}{line}", if first { lead } else { "        " });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_exact_where_they_can_be() {
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(-1.25), "-1.25");
        assert_eq!(number(0.731_058_578_6), "0.731059");
        assert_eq!(number(18_432.0), "18432");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(4.5e-5), "4.500e-5");
        assert_eq!(value_text(&vec![vec![1.0], vec![2.0]]), "[1, 2]ᵀ");
        assert_eq!(value_text(&vec![vec![1.0, 0.5]]), "[[1, 0.5]]");
    }

    #[test]
    fn lines_fit_in_80_columns() {
        let big = DMatrix::from_fn(4, 6, |i, j| (i * 6 + j) as f64 * 0.123_456);
        let q = Quantity::new("2m", "dR_dW2", "∂R̂/∂W⁽²⁾", "(1/n) Σᵢ ∂L/∂oᵃ hˢᵀ", &big)
            .with_numeric(&big);
        for line in render(&[q]).lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
    }
}
