//! A snapshot as flat (path, kind) → value leaves, and back, losslessly.
//!
//! The history stores only the leaves that changed since the previous sample,
//! so a counter that never moves costs nothing after the first keyframe. Paths
//! follow the snapshot's JSON: `mib/TcpExt/ListenOverflows`,
//! `links/[=eth0]/stats/rx_bytes`, `sysctls/net.core.somaxconn`. Arrays whose
//! elements all carry a distinct `name` (links) or `cpu` (softnet) are keyed by
//! it, so an interface coming or going shifts nothing; others by index (`[3]`).

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

/// How a leaf's SQL value is read back. Part of the series key, so a path whose
/// type changes is a new series, not a misread one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Null,
    Bool,
    /// Fits in i64 (every counter below 2^63).
    Int,
    /// Above i64::MAX: stored bit-cast into SQLite's signed integer.
    BigUint,
    Real,
    Text,
    EmptyObject,
    EmptyArray,
    /// A keyed array element's position, so the array is rebuilt in kernel order.
    Position,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::BigUint => "big_uint",
            Kind::Real => "real",
            Kind::Text => "text",
            Kind::EmptyObject => "empty_object",
            Kind::EmptyArray => "empty_array",
            Kind::Position => "position",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "null" => Kind::Null,
            "bool" => Kind::Bool,
            "int" => Kind::Int,
            "big_uint" => Kind::BigUint,
            "real" => Kind::Real,
            "text" => Kind::Text,
            "empty_object" => Kind::EmptyObject,
            "empty_array" => Kind::EmptyArray,
            "position" => Kind::Position,
            _ => return None,
        })
    }
}

/// A leaf's value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

pub type Flat = BTreeMap<(String, Kind), Stored>;

/// An empty key, which would otherwise vanish from a path.
const EMPTY: &str = "%00";

/// Reserved segment under a keyed element for its position.
const POSITION: &str = "[pos]";

fn escape(segment: &str) -> String {
    if segment.is_empty() {
        return EMPTY.to_string();
    }
    let mut out = String::with_capacity(segment.len());
    for (i, c) in segment.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '[' if i == 0 => out.push_str("%5B"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(segment: &str) -> Result<String, String> {
    if segment == EMPTY {
        return Ok(String::new());
    }
    let mut out = String::with_capacity(segment.len());
    let mut rest = segment;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).ok_or("truncated escape")?;
        out.push(match code {
            "25" => '%',
            "2F" => '/',
            "5B" => '[',
            _ => return Err(format!("unknown escape %{code}")),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The identity an array's elements are keyed by, when every element has a distinct one.
fn element_keys(items: &[Value]) -> Option<Vec<String>> {
    for field in ["name", "cpu"] {
        let keys: Option<Vec<String>> = items
            .iter()
            .map(|item| match item.get(field)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        if let Some(keys) = keys {
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() == keys.len() {
                return Some(keys);
            }
        }
    }
    None
}

fn leaf(value: &Value) -> (Kind, Stored) {
    match value {
        Value::Null => (Kind::Null, Stored::Null),
        Value::Bool(b) => (Kind::Bool, Stored::Int(i64::from(*b))),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (Kind::Int, Stored::Int(i))
            } else if let Some(u) = n.as_u64() {
                (Kind::BigUint, Stored::Int(u as i64))
            } else {
                (Kind::Real, Stored::Real(n.as_f64().unwrap_or(0.0)))
            }
        }
        Value::String(s) => (Kind::Text, Stored::Text(s.clone())),
        Value::Object(_) => (Kind::EmptyObject, Stored::Null),
        Value::Array(_) => (Kind::EmptyArray, Stored::Null),
    }
}

fn walk(path: &mut String, value: &Value, out: &mut Flat) {
    let child = |path: &mut String, segment: &str, v: &Value, out: &mut Flat| {
        let len = path.len();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(segment);
        walk(path, v, out);
        path.truncate(len);
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                child(path, &escape(k), v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => match element_keys(items) {
            Some(keys) => {
                for (i, (key, item)) in keys.iter().zip(items).enumerate() {
                    let segment = format!("[={}]", escape(key));
                    child(path, &segment, item, out);
                    let owner = if path.is_empty() {
                        segment.clone()
                    } else {
                        format!("{path}/{segment}")
                    };
                    out.insert(
                        (format!("{owner}/{POSITION}"), Kind::Position),
                        Stored::Int(i as i64),
                    );
                }
            }
            None => {
                for (i, item) in items.iter().enumerate() {
                    child(path, &format!("[{i}]"), item, out);
                }
            }
        },
        other => {
            let (kind, stored) = leaf(other);
            out.insert((path.clone(), kind), stored);
        }
    }
}

/// Every leaf of a value (a snapshot serialized to JSON).
pub fn flatten(value: &Value) -> Flat {
    let mut out = Flat::new();
    walk(&mut String::new(), value, &mut out);
    out
}

/// One step of a parsed path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Key(String),
    Index(usize),
    Keyed(String),
}

/// A leaf's path, parsed once (a replay rebuilds thousands of snapshots from the
/// same series). For a `[pos]` leaf, the path of the element it orders.
#[derive(Debug, Clone)]
pub struct ParsedPath {
    segments: Vec<Segment>,
    position: bool,
}

fn parse_segment(segment: &str) -> Result<Segment, String> {
    let Some(inner) = segment.strip_prefix('[') else {
        return Ok(Segment::Key(unescape(segment)?));
    };
    let inner = inner
        .strip_suffix(']')
        .ok_or_else(|| format!("segment {segment:?} is not closed"))?;
    if let Some(key) = inner.strip_prefix('=') {
        return Ok(Segment::Keyed(unescape(key)?));
    }
    inner
        .parse()
        .map(Segment::Index)
        .map_err(|_| format!("segment {segment:?} is neither an index nor a key"))
}

/// Parses a stored path; `kind` says whether it is a position leaf.
pub fn parse_path(path: &str, kind: Kind) -> Result<ParsedPath, String> {
    let mut raw: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let position = kind == Kind::Position;
    if position {
        let owner_is_keyed =
            raw.len() >= 2 && raw.last() == Some(&POSITION) && raw[raw.len() - 2].starts_with("[=");
        if !owner_is_keyed {
            return Err(format!("{path}: a position not under a keyed element"));
        }
        raw.pop();
    }
    let segments = raw
        .into_iter()
        .map(parse_segment)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(ParsedPath { segments, position })
}

/// A tree being rebuilt: keyed array elements carry their position.
#[derive(Debug)]
enum Node {
    Empty,
    Object(BTreeMap<String, Node>),
    Array(BTreeMap<Segment, (Option<i64>, Node)>),
    Leaf(Value),
}

fn to_value(kind: Kind, stored: &Stored) -> Result<Value, String> {
    Ok(match (kind, stored) {
        (Kind::Null, _) => Value::Null,
        (Kind::EmptyObject, _) => Value::Object(Map::new()),
        (Kind::EmptyArray, _) => Value::Array(Vec::new()),
        (Kind::Bool, Stored::Int(i)) => Value::Bool(*i != 0),
        (Kind::Int | Kind::Position, Stored::Int(i)) => Value::Number((*i).into()),
        (Kind::BigUint, Stored::Int(i)) => Value::Number((*i as u64).into()),
        (Kind::Real, Stored::Real(f)) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or("a real value that is not finite")?,
        (Kind::Real, Stored::Int(i)) => Value::Number((*i).into()),
        (Kind::Text, Stored::Text(s)) => Value::String(s.clone()),
        (kind, stored) => return Err(format!("a {} series holds {stored:?}", kind.name())),
    })
}

/// What goes at the end of a path: a value, or the position of a keyed element.
enum Put {
    Value(Value),
    Position(i64),
}

fn insert(node: &mut Node, segments: &[Segment], put: Put) -> Result<(), &'static str> {
    let Some((first, rest)) = segments.split_first() else {
        return match (node, put) {
            (node @ Node::Empty, Put::Value(v)) => {
                *node = Node::Leaf(v);
                Ok(())
            }
            _ => Err("a value where a container is"),
        };
    };
    if matches!(node, Node::Empty) {
        *node = match first {
            Segment::Key(_) => Node::Object(BTreeMap::new()),
            _ => Node::Array(BTreeMap::new()),
        };
    }
    match (node, first) {
        (Node::Object(children), Segment::Key(k)) => {
            let child = match children.get_mut(k) {
                Some(c) => c,
                None => children.entry(k.clone()).or_insert(Node::Empty),
            };
            insert(child, rest, put)
        }
        (Node::Array(items), key @ (Segment::Index(_) | Segment::Keyed(_))) => {
            let item = match items.get_mut(key) {
                Some(i) => i,
                None => items.entry(key.clone()).or_insert((None, Node::Empty)),
            };
            match (rest.is_empty(), put) {
                (true, Put::Position(p)) => {
                    item.0 = Some(p);
                    Ok(())
                }
                (_, put) => insert(&mut item.1, rest, put),
            }
        }
        _ => Err("an array and an object at the same place"),
    }
}

fn build(node: Node) -> Result<Value, String> {
    Ok(match node {
        Node::Empty => Value::Null,
        Node::Leaf(v) => v,
        Node::Object(children) => {
            let mut map = Map::new();
            for (k, child) in children {
                let v = build(child).map_err(|e| format!("/{}{e}", escape(&k)))?;
                map.insert(k, v);
            }
            Value::Object(map)
        }
        Node::Array(items) => {
            let mut ordered: Vec<(i64, Value)> = Vec::with_capacity(items.len());
            for (key, (position, child)) in items {
                let order = match (&key, position) {
                    (Segment::Index(i), _) => *i as i64,
                    (_, Some(p)) => p,
                    (Segment::Keyed(k), None) => {
                        return Err(format!(
                            "/[={}]: a keyed element without its position",
                            escape(k)
                        ))
                    }
                    (Segment::Key(_), None) => return Err("a key inside an array".into()),
                };
                ordered.push((order, build(child)?));
            }
            ordered.sort_by_key(|(order, _)| *order);
            Value::Array(ordered.into_iter().map(|(_, v)| v).collect())
        }
    })
}

/// The value a set of parsed leaves describes; an error names the inconsistency.
pub fn unflatten_parsed<'a>(
    leaves: impl IntoIterator<Item = (&'a ParsedPath, Kind, &'a Stored)>,
) -> Result<Value, String> {
    let mut root = Node::Empty;
    for (path, kind, stored) in leaves {
        let put = if path.position {
            let Stored::Int(i) = stored else {
                return Err("a position that is not an integer".into());
            };
            Put::Position(*i)
        } else {
            Put::Value(to_value(kind, stored)?)
        };
        insert(&mut root, &path.segments, put).map_err(|e| format!("{path:?}: {e}"))?;
    }
    build(root)
}

/// The value a set of leaves describes; an error names the first inconsistent path.
pub fn unflatten<'a>(
    leaves: impl IntoIterator<Item = (&'a str, Kind, &'a Stored)>,
) -> Result<Value, String> {
    let parsed: Vec<(ParsedPath, Kind, &Stored)> = leaves
        .into_iter()
        .map(|(path, kind, stored)| Ok((parse_path(path, kind)?, kind, stored)))
        .collect::<Result<_, String>>()?;
    unflatten_parsed(parsed.iter().map(|(p, k, s)| (p, *k, *s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn round_trip(v: &Value) -> Value {
        let flat = flatten(v);
        unflatten(flat.iter().map(|((p, k), s)| (p.as_str(), *k, s))).expect("unflatten")
    }

    #[test]
    fn keyed_arrays_keep_their_order_and_odd_names_survive() {
        let v = json!({
            "links": [{"name": "eth0.100", "mtu": 1500}, {"name": "a/b%[c", "mtu": 9000}, {"name": "lo", "mtu": 65536}],
            "softnet": [{"cpu": 1, "processed": 5}, {"cpu": 0, "processed": 7}],
            "dup": [{"name": "x"}, {"name": "x"}],
            "[odd": {"": 1, "%2F": true},
            "empty": {}, "none": [], "big": u64::MAX, "neg": -3, "real": 0.5, "n": null,
        });
        assert_eq!(round_trip(&v), v);
        let flat = flatten(&v);
        assert!(flat.contains_key(&("links/[=eth0.100]/mtu".to_string(), Kind::Int)));
        assert!(flat.contains_key(&("dup/[1]/name".to_string(), Kind::Text)));
    }

    #[test]
    fn inconsistent_leaves_are_errors_not_panics() {
        let a = Stored::Int(1);
        let t = Stored::Text("x".into());
        for leaves in [
            vec![("a", Kind::Int, &a), ("a/b", Kind::Int, &a)],
            vec![("a/[0]", Kind::Int, &a), ("a/b", Kind::Int, &a)],
            vec![("a/[=x]/v", Kind::Int, &a)],
            vec![("a/[zz]", Kind::Int, &a)],
            vec![("a", Kind::Bool, &t)],
            vec![("a%", Kind::Int, &a)],
            vec![("[pos]", Kind::Position, &a)],
        ] {
            assert!(unflatten(leaves).is_err());
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            "[a-z/%\\[\\]=.]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z/%\\[\\]=.]{0,5}", inner.clone(), 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                prop::collection::btree_map("[a-z/%\\[=]{1,4}", inner, 0..4).prop_map(|m| {
                    Value::Array(
                        m.into_iter()
                            .map(|(k, v)| json!({"name": k, "v": v}))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_survives_flatten_and_unflatten(v in arb_json()) {
            prop_assert_eq!(round_trip(&v), v);
        }
    }
}
