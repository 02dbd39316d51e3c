//! The report as a small document tree (headings, paragraphs, tables, figures), built once
//! and rendered twice: to Markdown (`markdown.rs`) and to self-contained HTML (`html.rs`).

/// A run of inline text.
#[derive(Clone, Debug, PartialEq)]
pub enum Inline {
    Plain(String),
    /// Identifiers, keys and values: `matrix_lr=0.05`.
    Code(String),
    Strong(String),
    Em(String),
}

/// A paragraph's worth of inline pieces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text(pub Vec<Inline>);

impl Text {
    pub fn new() -> Text {
        Text::default()
    }
    /// Text as written, where a span between two backticks (`` `lrx run` ``, as messages
    /// write commands and keys) becomes code: escaped as plain text, its backticks would show.
    #[must_use]
    pub fn plain(mut self, s: impl Into<String>) -> Text {
        let s: String = s.into();
        if s.matches('`').count() < 2 || s.matches('`').count() % 2 == 1 {
            self.0.push(Inline::Plain(s));
            return self;
        }
        for (i, piece) in s.split('`').enumerate() {
            match (i % 2, piece.is_empty()) {
                (_, true) => {}
                (0, false) => self.0.push(Inline::Plain(piece.to_owned())),
                _ => self.0.push(Inline::Code(piece.to_owned())),
            }
        }
        self
    }
    #[must_use]
    pub fn code(mut self, s: impl Into<String>) -> Text {
        self.0.push(Inline::Code(s.into()));
        self
    }
    #[must_use]
    pub fn strong(mut self, s: impl Into<String>) -> Text {
        self.0.push(Inline::Strong(s.into()));
        self
    }
    #[must_use]
    pub fn em(mut self, s: impl Into<String>) -> Text {
        self.0.push(Inline::Em(s.into()));
        self
    }
    /// The text without markup (for tests and plain renderers).
    pub fn to_plain(&self) -> String {
        self.0
            .iter()
            .map(|i| match i {
                Inline::Plain(s) | Inline::Code(s) | Inline::Strong(s) | Inline::Em(s) => s.as_str(),
            })
            .collect()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new().plain(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new().plain(s)
    }
}

/// One table cell: what it shows, and the number it sorts by (HTML tables sort on click).
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub text: Text,
    pub sort: Option<f64>,
}

impl Cell {
    pub fn text(t: impl Into<Text>) -> Cell {
        Cell { text: t.into(), sort: None }
    }
    pub fn num(t: impl Into<Text>, value: Option<f64>) -> Cell {
        Cell { text: t.into(), sort: value.filter(|v| v.is_finite()) }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub cells: Vec<Cell>,
    /// The winner's row.
    pub highlight: bool,
    /// A diverged or failed candidate's row.
    pub muted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    /// Right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(header: Vec<(String, bool)>) -> Table {
        let (header, numeric) = header.into_iter().unzip();
        Table { header, numeric, rows: Vec::new() }
    }
    pub fn push(&mut self, cells: Vec<Cell>, highlight: bool, muted: bool) {
        self.rows.push(Row { cells, highlight, muted });
    }
}

/// A figure written to `figures/<file>`, inlined in the HTML.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Path relative to the report's folder (`figures/lr-loss.svg`).
    pub path: String,
    pub svg: String,
    pub caption: Text,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Heading(u8, Text),
    Para(Text),
    /// A remark that deserves attention (a close call, a failed phase).
    Note(Text),
    List(Vec<Text>),
    Table(Table),
    Figure(Figure),
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
    /// A page of a study still running reloads itself every this many seconds (HTML only).
    pub refresh: Option<u32>,
}

impl Doc {
    pub fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }
    pub fn heading(&mut self, level: u8, t: impl Into<Text>) {
        self.push(Block::Heading(level, t.into()));
    }
    pub fn para(&mut self, t: impl Into<Text>) {
        self.push(Block::Para(t.into()));
    }
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.blocks.iter().filter_map(|b| if let Block::Figure(f) = b { Some(f) } else { None })
    }
}
