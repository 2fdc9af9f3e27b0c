//! What `/functions` says about each function: graphite-web's shape
//! (`name`, `function`, `description`, `module`, `group`, `params`), which
//! Grafana's Graphite query editor loads to offer functions and their
//! parameters. Each family file keeps a table of these next to its code.

use serde_json::{json, Map, Value};

/// One function as `/functions` describes it.
#[derive(Debug, Clone, Copy)]
pub struct FnInfo {
    pub name: &'static str,
    /// graphite-web's group: Combine, Transform, Calculate, Filter Series,
    /// Filter Data, Sorting, Alias, Graph, Special. Grafana hides `Graph`.
    pub group: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
}

/// A parameter type, named as graphite-web names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    SeriesList,
    SeriesLists,
    Float,
    Integer,
    IntOrInf,
    Boolean,
    String,
    Node,
    NodeOrTag,
    Tag,
    Any,
    AggFunc,
    AggOrSeriesFunc,
    Interval,
    IntOrInterval,
    Date,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::SeriesList => "seriesList",
            Ty::SeriesLists => "seriesLists",
            Ty::Float => "float",
            Ty::Integer => "integer",
            Ty::IntOrInf => "intOrInf",
            Ty::Boolean => "boolean",
            Ty::String => "string",
            Ty::Node => "node",
            Ty::NodeOrTag => "nodeOrTag",
            Ty::Tag => "tag",
            Ty::Any => "any",
            Ty::AggFunc => "aggFunc",
            Ty::AggOrSeriesFunc => "aggOrSeriesFunc",
            Ty::Interval => "interval",
            Ty::IntOrInterval => "intOrInterval",
            Ty::Date => "date",
        }
    }
}

/// A default value or a suggestion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lit {
    Int(i64),
    Float(f64),
    Str(&'static str),
    Bool(bool),
    /// Python's `float('inf')` (graphite-web writes it as `1e9999`).
    Inf,
}

impl Lit {
    fn json(self) -> Value {
        match self {
            Lit::Int(n) => json!(n),
            Lit::Float(f) => json!(f),
            Lit::Str(s) => json!(s),
            Lit::Bool(b) => json!(b),
            Lit::Inf => json!(INF_MARK),
        }
    }

    /// As Python's `repr()` prints it in a signature.
    fn py(self) -> String {
        match self {
            Lit::Int(n) => n.to_string(),
            Lit::Float(f) => crate::format::py_float_repr(f),
            Lit::Str(s) => format!("'{s}'"),
            Lit::Bool(b) => if b { "True" } else { "False" }.to_string(),
            Lit::Inf => "inf".to_string(),
        }
    }
}

/// Stands for infinity inside the JSON tree until the text is written.
const INF_MARK: &str = "\u{0}inf\u{0}";

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub multiple: bool,
    pub default: Option<Lit>,
    pub options: &'static [&'static str],
    pub suggestions: &'static [Lit],
}

/// An optional parameter; chain `.req()`, `.multi()`, `.dflt(..)`,
/// `.opts(..)`, `.sugg(..)`.
pub const fn p(name: &'static str, ty: Ty) -> Param {
    Param {
        name,
        ty,
        required: false,
        multiple: false,
        default: None,
        options: &[],
        suggestions: &[],
    }
}

impl Param {
    pub const fn req(mut self) -> Param {
        self.required = true;
        self
    }
    pub const fn multi(mut self) -> Param {
        self.multiple = true;
        self
    }
    pub const fn dflt(mut self, v: Lit) -> Param {
        self.default = Some(v);
        self
    }
    pub const fn opts(mut self, o: &'static [&'static str]) -> Param {
        self.options = o;
        self
    }
    pub const fn sugg(mut self, s: &'static [Lit]) -> Param {
        self.suggestions = s;
        self
    }
}

/// The usual first parameter.
pub const SERIES_LIST: Param = p("seriesList", Ty::SeriesList).req();
/// `*seriesLists` of the aggregating functions.
pub const SERIES_LISTS: Param = p("seriesLists", Ty::SeriesList).req().multi();

impl FnInfo {
    pub const fn new(
        name: &'static str,
        group: &'static str,
        description: &'static str,
        params: &'static [Param],
    ) -> FnInfo {
        FnInfo {
            name,
            group,
            description,
            params,
        }
    }

    /// The Python signature graphite-web prints, `name(a, b=1, *c)`.
    pub fn signature(&self) -> String {
        let parts: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if p.multiple {
                    format!("*{}", p.name)
                } else if let Some(d) = p.default {
                    format!("{}={}", p.name, d.py())
                } else if p.required {
                    p.name.to_string()
                } else {
                    format!("{}=None", p.name)
                }
            })
            .collect();
        format!("{}({})", self.name, parts.join(", "))
    }

    pub fn json(&self) -> Value {
        let params: Vec<Value> = self.params.iter().map(param_json).collect();
        json!({
            "name": self.name,
            "function": self.signature(),
            "description": self.description,
            "module": "graphite.render.functions",
            "group": self.group,
            "params": params,
        })
    }
}

/// graphite-web's aggregation function names (`aggFunc` options).
pub const AGG_FUNCS: &[&str] = &[
    "average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range",
    "multiply", "last", "rangeOf", "avg", "total", "current",
];

/// Functions that take one series list and aggregate it (graphite-web's
/// `aggregator = True`), valid as a `groupByNode` callback.
pub const AGGREGATORS: &[&str] = &[
    "averageSeries",
    "avg",
    "countSeries",
    "diffSeries",
    "maxSeries",
    "minSeries",
    "multiplySeries",
    "rangeOfSeries",
    "stddevSeries",
    "sum",
    "sumSeries",
];

fn param_json(p: &Param) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert("type".into(), json!(p.ty.name()));
    if p.required {
        m.insert("required".into(), json!(true));
    }
    if let Some(d) = p.default {
        m.insert("default".into(), d.json());
    }
    if p.multiple {
        m.insert("multiple".into(), json!(true));
    }
    let mut options: Vec<&str> = p.options.to_vec();
    match p.ty {
        Ty::AggFunc => options.extend(AGG_FUNCS),
        Ty::AggOrSeriesFunc => {
            options.extend(AGG_FUNCS);
            options.extend(AGGREGATORS);
        }
        _ => {}
    }
    options.sort_unstable();
    options.dedup();
    if !options.is_empty() {
        m.insert("options".into(), json!(options));
    }
    if !p.suggestions.is_empty() {
        let s: Vec<Value> = p.suggestions.iter().map(|l| l.json()).collect();
        m.insert("suggestions".into(), Value::Array(s));
    }
    Value::Object(m)
}

/// The JSON text of a value built from these tables, with infinities as
/// graphite-web writes them (`1e9999`, which JavaScript reads as Infinity).
pub fn to_text(v: &Value) -> String {
    // serde_json writes the marker's NULs as \u0000.
    v.to_string().replace("\"\\u0000inf\\u0000\"", "1e9999")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: FnInfo = FnInfo::new(
        "keepLastValue",
        "Transform",
        "x",
        &[SERIES_LIST, p("limit", Ty::IntOrInf).dflt(Lit::Inf)],
    );

    #[test]
    fn signature_and_json_as_graphite_prints_them() {
        assert_eq!(SAMPLE.signature(), "keepLastValue(seriesList, limit=inf)");
        const AGG: FnInfo = FnInfo::new(
            "aggregate",
            "Combine",
            "",
            &[
                SERIES_LIST,
                p("func", Ty::AggFunc).req(),
                p("xFilesFactor", Ty::Float),
            ],
        );
        let agg = AGG;
        assert_eq!(
            agg.signature(),
            "aggregate(seriesList, func, xFilesFactor=None)"
        );
        let v = agg.json();
        assert_eq!(
            v["params"][0],
            json!({"name": "seriesList", "type": "seriesList", "required": true})
        );
        assert_eq!(
            v["params"][2],
            json!({"name": "xFilesFactor", "type": "float"})
        );
        let opts = v["params"][1]["options"].as_array().unwrap();
        assert_eq!(opts.len(), AGG_FUNCS.len());
        assert_eq!(opts[0], "average");
        let text = to_text(&SAMPLE.json());
        assert!(text.contains(r#""default":1e9999"#), "{text}");
        const { assert!(SERIES_LISTS.multiple && SERIES_LISTS.required) };
    }
}
