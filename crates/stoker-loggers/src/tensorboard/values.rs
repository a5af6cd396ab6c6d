//! Turning what stoker logs into what TensorBoard shows: hyperparameters from the config,
//! histograms from values, images and text from tables.

use crate::hparams::{self, HParam};

use super::proto::{self, HistogramProto, Kind, ProtoValue};

/// The config's leaves as hyperparameter values.
pub fn flatten_config(yaml: &str) -> Vec<(String, ProtoValue)> {
    hparams::flatten_config(yaml)
        .into_iter()
        .map(|(name, value)| {
            let kind = match value {
                HParam::Number(n) => Kind::NumberValue(n),
                HParam::Text(t) => Kind::StringValue(t),
                HParam::Bool(b) => Kind::BoolValue(b),
            };
            (name, ProtoValue { kind: Some(kind) })
        })
        .collect()
}

/// The hparams plugin's data type of a value.
pub fn data_type(value: &ProtoValue) -> i32 {
    match value.kind {
        Some(Kind::BoolValue(_)) => proto::DATA_TYPE_BOOL,
        Some(Kind::NumberValue(_)) => proto::DATA_TYPE_FLOAT64,
        _ => proto::DATA_TYPE_STRING,
    }
}

/// Text shown as preformatted by TensorBoard's markdown: every line indented four spaces.
pub fn code_block(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A histogram of `values` in 30 equal buckets between their minimum and maximum (non-finite
/// values are left out).
pub fn histogram(values: &[f32]) -> HistogramProto {
    let finite: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| *v as f64)
        .collect();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut sum, mut sum_squares) = (0.0, 0.0);
    for &v in &finite {
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sum_squares += v * v;
    }
    if finite.is_empty() {
        return HistogramProto::default();
    }
    let buckets = if max > min { 30 } else { 1 };
    let width = (max - min) / buckets as f64;
    let mut counts = vec![0.0; buckets];
    for &v in &finite {
        let i = if width > 0.0 {
            (((v - min) / width) as usize).min(buckets - 1)
        } else {
            0
        };
        counts[i] += 1.0;
    }
    let bucket_limit = (1..=buckets)
        .map(|i| {
            if i == buckets {
                max
            } else {
                min + width * i as f64
            }
        })
        .collect();
    HistogramProto {
        min,
        max,
        num: finite.len() as f64,
        sum,
        sum_squares,
        bucket_limit,
        bucket: counts,
    }
}

/// A PNG's width and height, from its header.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[1..4] != b"PNG" || &png[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((width, height))
}

/// The PNG's channels as TensorBoard's colorspace (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
pub fn png_channels(png: &[u8]) -> i32 {
    match png.get(25) {
        Some(0) => 1,
        Some(4) => 2,
        Some(6) => 4,
        _ => 3,
    }
}

/// A CSV with a header row and a label column whose body is a square matrix of counts (a
/// confusion matrix), as that matrix.
pub fn count_matrix(csv: &str) -> Option<Vec<Vec<u64>>> {
    let rows: Vec<Vec<u64>> = csv
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .skip(1)
                .map(|c| c.trim().parse().ok())
                .collect()
        })
        .collect::<Option<_>>()?;
    (!rows.is_empty() && rows.iter().all(|r| r.len() == rows.len())).then_some(rows)
}

/// A CSV as a markdown table.
pub fn markdown_table(csv: &str) -> String {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return String::new();
    };
    let cells = |l: &str| format!("| {} |", l.split(',').collect::<Vec<_>>().join(" | "));
    let columns = header.split(',').count();
    let mut out = vec![cells(header), format!("|{}", "---|".repeat(columns))];
    out.extend(lines.map(cells));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperparameters_keep_their_types() {
        let hp = flatten_config("lr: 0.001\nname: adam\nflag: true\n");
        assert_eq!(hp[0].1.kind, Some(Kind::NumberValue(0.001)));
        assert_eq!(data_type(&hp[1].1), proto::DATA_TYPE_STRING);
        assert_eq!(data_type(&hp[2].1), proto::DATA_TYPE_BOOL);
    }

    #[test]
    fn histograms_count_every_value_once() {
        let h = histogram(&[0.0, 1.0, 2.0, 3.0, f32::NAN]);
        assert_eq!(
            (h.min, h.max, h.num, h.sum, h.sum_squares),
            (0.0, 3.0, 4.0, 6.0, 14.0)
        );
        assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
        assert_eq!(h.bucket_limit.len(), 30);
        assert_eq!(*h.bucket_limit.last().unwrap(), 3.0);
        assert_eq!(h.bucket[0], 1.0);
        assert_eq!(h.bucket[29], 1.0);
        let flat = histogram(&[0.5, 0.5]);
        assert_eq!(
            (flat.bucket.clone(), flat.bucket_limit.clone()),
            (vec![2.0], vec![0.5])
        );
    }

    #[test]
    fn reads_confusion_matrices_and_falls_back_to_markdown() {
        let csv = "true\\predicted,0,1\n0,3,1\n1,0,4\n";
        assert_eq!(count_matrix(csv), Some(vec![vec![3, 1], vec![0, 4]]));
        assert_eq!(count_matrix("class,precision\n0,0.5\n1,0.25\n"), None);
        assert_eq!(
            markdown_table("a,b\n1,2\n"),
            "| a | b |\n|---|---|\n| 1 | 2 |"
        );
    }
}
