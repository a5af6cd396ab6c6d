//! The model summary printed at the start: each layer's parameters, the total, the trainable
//! count and the size.

use std::fmt::Write;

use stoker::model::ParamInfo;

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The summary table of these parameters, grouped by layer (a parameter's path without its
/// last segment).
pub fn model_summary(params: &[ParamInfo]) -> String {
    let mut layers: Vec<(String, Vec<&ParamInfo>)> = Vec::new();
    for param in params {
        let layer = param
            .path
            .rsplit_once('.')
            .map_or("(root)", |(layer, _)| layer)
            .to_string();
        match layers.iter_mut().find(|(name, _)| *name == layer) {
            Some((_, list)) => list.push(param),
            None => layers.push((layer, vec![param])),
        }
    }
    let count = |p: &ParamInfo| p.shape.iter().product::<usize>();
    let width = layers
        .iter()
        .map(|(n, _)| n.len())
        .chain(["layer".len()])
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let _ = writeln!(out, "  {:<width$}  {:>12}  shapes", "layer", "parameters");
    for (layer, list) in &layers {
        let shapes: Vec<String> = list
            .iter()
            .map(|p| {
                let name = p.path.rsplit_once('.').map_or(p.path.as_str(), |(_, n)| n);
                let frozen = if p.trainable { "" } else { " (frozen)" };
                format!("{name} {:?}{frozen}", p.shape)
            })
            .collect();
        let n: usize = list.iter().map(|p| count(p)).sum();
        let _ = writeln!(
            out,
            "  {layer:<width$}  {:>12}  {}",
            thousands(n),
            shapes.join(", ")
        );
    }
    let total: usize = params.iter().map(count).sum();
    let trainable: usize = params.iter().filter(|p| p.trainable).map(count).sum();
    let bytes: usize = params.iter().map(|p| count(p) * p.element_bytes).sum();
    let _ = write!(
        out,
        "  {} parameters: {} trainable, {} frozen; {:.3} MB",
        thousands(total),
        thousands(trainable),
        thousands(total - trainable),
        bytes as f64 / 1e6
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(path: &str, shape: &[usize], trainable: bool) -> ParamInfo {
        ParamInfo {
            path: path.into(),
            shape: shape.to_vec(),
            trainable,
            element_bytes: 4,
        }
    }

    #[test]
    fn groups_parameters_by_layer_and_totals_them() {
        let text = model_summary(&[
            param("layers.0.weight", &[2, 1000], true),
            param("layers.0.bias", &[1000], true),
            param("head.weight", &[1000, 1], false),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("layers.0") && lines[1].contains("3,000"));
        assert!(lines[1].contains("weight [2, 1000], bias [1000]"));
        assert!(lines[2].contains("1,000") && lines[2].contains("(frozen)"));
        assert_eq!(
            lines[3],
            "  4,000 parameters: 3,000 trainable, 1,000 frozen; 0.016 MB"
        );
    }
}
