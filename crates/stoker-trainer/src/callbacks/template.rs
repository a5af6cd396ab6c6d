//! File-name templates in Lightning's style: `epoch{epoch:02d}-val_loss{val_loss:.4f}`.

use std::collections::BTreeMap;

/// One `{name:spec}` placeholder or a literal piece.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Field { name: String, spec: Spec },
}

/// A format spec: `d` with optional zero-padded width, or `.Nf` / `.Ne`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spec {
    Plain,
    Int { width: usize, zero: bool },
    Fixed(usize),
    Exp(usize),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

fn parse_spec(spec: &str) -> Result<Spec, String> {
    if spec.is_empty() {
        return Ok(Spec::Plain);
    }
    if let Some(digits) = spec.strip_suffix('d') {
        let zero = digits.starts_with('0');
        let width = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| format!("`{spec}`"))?
        };
        return Ok(Spec::Int { width, zero });
    }
    if let Some(p) = spec.strip_prefix('.') {
        if let Some(n) = p.strip_suffix('f') {
            return n.parse().map(Spec::Fixed).map_err(|_| format!("`{spec}`"));
        }
        if let Some(n) = p.strip_suffix('e') {
            return n.parse().map(Spec::Exp).map_err(|_| format!("`{spec}`"));
        }
    }
    Err(format!("`{spec}` (use d, 02d, .4f or .3e)"))
}

impl Template {
    /// Parses `text`; an error says what is wrong.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{text}` has a `{{` without `}}`"))?
                + open;
            let inner = &rest[open + 1..close];
            let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
            if name.is_empty() {
                return Err(format!("`{text}` has an empty `{{}}`"));
            }
            let spec = parse_spec(spec).map_err(|e| format!("`{text}`: unknown format {e}"))?;
            pieces.push(Piece::Field {
                name: name.to_string(),
                spec,
            });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{text}` has a `}}` without `{{`"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// The names the template uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fills the template; `None` names the first missing value.
    pub fn render(&self, values: &BTreeMap<String, f64>) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { name, spec } => {
                    let v = *values.get(name).ok_or_else(|| name.clone())?;
                    let text = match *spec {
                        Spec::Plain if v.fract() == 0.0 && v.abs() < 1e15 => {
                            format!("{}", v as i64)
                        }
                        Spec::Plain => format!("{v}"),
                        Spec::Int { width, zero: true } => format!("{:0width$}", v.round() as i64),
                        Spec::Int { width, zero: false } => format!("{:width$}", v.round() as i64),
                        Spec::Fixed(p) => format!("{v:.p$}"),
                        Spec::Exp(p) => format!("{v:.p$e}"),
                    };
                    out.push_str(&text);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_python_format() {
        let t = Template::parse("epoch{epoch:02d}-val_loss{val_loss:.4f}").unwrap();
        let values = BTreeMap::from([
            ("epoch".to_string(), 3.0),
            ("val_loss".to_string(), 0.123456),
        ]);
        assert_eq!(t.render(&values).unwrap(), "epoch03-val_loss0.1235");
        let t = Template::parse("epoch={epoch}-step={step}").unwrap();
        let values = BTreeMap::from([("epoch".to_string(), 12.0), ("step".to_string(), 340.0)]);
        assert_eq!(t.render(&values).unwrap(), "epoch=12-step=340");
        assert_eq!(t.render(&BTreeMap::new()).unwrap_err(), "epoch");
        assert!(Template::parse("bad{epoch").is_err());
        assert!(Template::parse("{epoch:x}").is_err());
        assert_eq!(
            Template::parse("{a:.2e}")
                .unwrap()
                .render(&BTreeMap::from([("a".into(), 1234.5)]))
                .unwrap(),
            "1.23e3"
        );
    }
}
