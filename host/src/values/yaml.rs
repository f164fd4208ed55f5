//! Values files parsed into JSON with the position of every node, so that a problem can point
//! at the line and column that caused it, as `kubectl` and Helm users expect. Aliases are
//! expanded within a bound on the nodes built.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Origin, ValuesError, escape_pointer};

/// Bound on nodes built from one values file, so aliases cannot expand without limit.
const MAX_NODES: usize = 100_000;

/// A values file's tree and where each of its nodes starts.
pub(crate) struct Located {
    /// `None` for an empty file.
    pub root: Option<Value>,
    /// JSON pointer (from the file's root) → origin.
    pub origins: HashMap<String, Origin>,
}

/// Parses `text`; `path` is only for positions and messages.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Located, ValuesError> {
    let mut builder = TreeBuilder::new(path);
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| ValuesError::Syntax {
            path: path.to_owned(),
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
    if let Some(message) = builder.error {
        return Err(ValuesError::Shape {
            path: path.to_owned(),
            message,
        });
    }
    Ok(Located {
        root: builder.root,
        origins: builder.origins,
    })
}

/// Types a scalar as YAML 1.2's core schema does.
pub(super) fn scalar_value(text: &str, quoted: bool) -> Value {
    if quoted {
        return Value::String(text.to_string());
    }
    match Yaml::from_str(text) {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.to_string()), Value::Number),
        _ => Value::String(text.to_string()),
    }
}

/// Builds a JSON tree from YAML parser events, recording where every node starts.
struct TreeBuilder {
    stack: Vec<Frame>,
    root: Option<Value>,
    /// Anchored values with their node counts.
    anchors: HashMap<usize, (Value, usize)>,
    origins: HashMap<String, Origin>,
    path: PathBuf,
    nodes: usize,
    error: Option<String>,
}

enum Frame {
    Map {
        map: Map<String, Value>,
        /// The key whose value comes next, and where the key stands.
        key: Option<(String, Marker)>,
        anchor: usize,
        pointer: String,
        /// Nodes inside so far, aliases counted in full.
        nodes: usize,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
        pointer: String,
        nodes: usize,
    },
}

impl TreeBuilder {
    fn new(path: &Path) -> Self {
        Self {
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            origins: HashMap::new(),
            path: path.to_owned(),
            nodes: 0,
            error: None,
        }
    }

    /// The JSON pointer of the node that starts now.
    fn next_pointer(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Map { key, pointer, .. }) => {
                let key = key.as_ref().map_or("", |(key, _)| key.as_str());
                format!("{pointer}/{}", escape_pointer(key))
            }
            Some(Frame::Seq { items, pointer, .. }) => format!("{pointer}/{}", items.len()),
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// Records where the node starting at `mark` is; a mapping value is located by its key,
    /// which is where people look.
    fn record(&mut self, mark: Marker) -> String {
        let pointer = self.next_pointer();
        let mark = match self.stack.last() {
            Some(Frame::Map {
                key: Some((_, key_mark)),
                ..
            }) => *key_mark,
            _ => mark,
        };
        self.origins.insert(
            pointer.clone(),
            Origin::File {
                path: self.path.clone(),
                line: mark.line(),
                column: mark.col() + 1,
            },
        );
        pointer
    }

    /// Places a finished node of `nodes` nodes into its parent.
    fn finish(&mut self, value: Value, anchor: usize, nodes: usize) {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            self.error.get_or_insert_with(|| {
                format!("more than {MAX_NODES} values; is an alias expanding without bound?")
            });
            return;
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Map {
                map,
                key,
                nodes: inside,
                ..
            }) => {
                *inside += nodes;
                if let Some((key, _)) = key.take() {
                    map.insert(key, value);
                }
            }
            Some(Frame::Seq {
                items,
                nodes: inside,
                ..
            }) => {
                *inside += nodes;
                items.push(value);
            }
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let non_scalar_key = || format!("line {}: mapping keys must be plain strings", mark.line());
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some((text, mark));
                    }
                    return;
                }
                self.record(mark);
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.finish(scalar_value(&text, quoted), anchor, 1);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) if self.expecting_key() => {
                self.error = Some(non_scalar_key());
            }
            Event::MappingStart(anchor, _) => {
                let pointer = self.record(mark);
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    key: None,
                    anchor,
                    pointer,
                    nodes: 0,
                });
            }
            Event::SequenceStart(anchor, _) => {
                let pointer = self.record(mark);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    pointer,
                    nodes: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Map {
                    map, anchor, nodes, ..
                }) => {
                    self.finish(Value::Object(map), anchor, nodes + 1);
                }
                Some(Frame::Seq {
                    items,
                    anchor,
                    nodes,
                    ..
                }) => {
                    self.finish(Value::Array(items), anchor, nodes + 1);
                }
                None => {}
            },
            Event::Alias(anchor) => {
                if self.expecting_key() {
                    self.error = Some(non_scalar_key());
                    return;
                }
                self.record(mark);
                let (value, nodes) = self
                    .anchors
                    .get(&anchor)
                    .cloned()
                    .unwrap_or((Value::Null, 1));
                self.finish(value, 0, nodes);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}
