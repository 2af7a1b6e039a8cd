//! A table as plain data (columns of cells, with a title and notes), built once and written as
//! Markdown (the terminal and `.md` results) or HTML (the report), so the two show the same
//! columns and the same numbers.
use std::fmt::Write;

/// One cell: its text, and the exact number it shows where it shows one (HTML keeps it in a
/// `data-value` attribute).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub value: Option<f64>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Cell { text: text.into(), value: None }
    }

    pub fn number(text: impl Into<String>, value: Option<f64>) -> Self {
        Cell { text: text.into(), value }
    }
}

/// A column: a header and one cell per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// Numbers align right, text left.
    pub numeric: bool,
    pub cells: Vec<Cell>,
}

impl Column {
    pub fn new(name: impl Into<String>, numeric: bool, cells: Vec<Cell>) -> Self {
        Column { name: name.into(), numeric, cells }
    }

    /// Whether some cell says something other than the first.
    pub fn varies(&self) -> bool {
        self.cells.iter().any(|c| c.text != self.cells[0].text)
    }

    /// Whether some cell says anything (`-` is nothing).
    pub fn has_values(&self) -> bool {
        self.cells.iter().any(|c| c.text != "-")
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub title: Option<String>,
    pub columns: Vec<Column>,
    /// Lines under the table: what its numbers are.
    pub notes: Vec<String>,
}

/// Cell text without characters that would break a Markdown table row.
pub fn md_cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// Text on one line: each line trimmed, empty ones dropped, joined by a space (a multi-line error
/// in a table cell or a progress line).
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Text made safe inside HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.cells.len())
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The title (as a line ending in `:`), the table, and its notes.
    pub fn markdown(&self) -> String {
        let mut text = String::new();
        if let Some(title) = &self.title {
            let _ = write!(text, "{title}:\n\n");
        }
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        text.push_str(&line(self.columns.iter().map(|c| md_cell(&c.name)).collect()));
        let rule: Vec<&str> = self.columns.iter().map(|c| if c.numeric { "---:" } else { "---" }).collect();
        text.push_str(&format!("|{}|\n", rule.join("|")));
        for row in 0..self.rows() {
            text.push_str(&line(self.columns.iter().map(|c| md_cell(&c.cells[row].text)).collect()));
        }
        if !self.notes.is_empty() {
            text.push('\n');
            for note in &self.notes {
                text.push_str(note);
                text.push('\n');
            }
        }
        text
    }

    /// The table as an HTML `<table class="{class}">` inside a scrolling `<div>`, with its title
    /// as a caption and its notes after it; numbers carry their exact value in `data-value`.
    pub fn html(&self, class: &str) -> String {
        let mut html = format!("<div class=\"wide\"><table class=\"{class}\">");
        if let Some(title) = &self.title {
            let _ = write!(html, "<caption>{}</caption>", escape(title));
        }
        html.push_str("<tr>");
        for c in &self.columns {
            let _ = write!(html, "<th{}>{}</th>", if c.numeric { "" } else { " class=\"text\"" }, escape(&c.name));
        }
        html.push_str("</tr>\n");
        for row in 0..self.rows() {
            html.push_str("<tr>");
            for c in &self.columns {
                let cell = &c.cells[row];
                let class = if c.numeric { "" } else { " class=\"text\"" };
                let value = cell.value.map_or_else(String::new, |v| format!(" data-value=\"{v}\""));
                let _ = write!(html, "<td{class}{value}>{}</td>", escape(&cell.text));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table></div>\n");
        for note in &self.notes {
            let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(note));
        }
        html
    }
}
