//! Classification metrics from class scores [batch, classes] and integer labels: `top_k_accuracy`,
//! `precision`, `recall`, `f1` (macro, micro, weighted), `per_class`, `confusion_matrix`. All but
//! top-k come from one confusion matrix accumulated on the device over the epoch, and follow
//! scikit-learn (a class absent from both labels and predictions does not enter the averages; an
//! undefined ratio counts as 0).

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::{Int, Tensor, TensorData};
use stoker::metric::sum_sized;
use stoker::names::{prediction as default_pred, target as default_target};
use stoker::prelude::*;
use stoker::targets::hard_labels as labels;

use crate::sum::DeviceCount;

/// One-hot rows `[n, classes]` of class indices `[n]`.
fn one_hot(index: Tensor<1, Int>, classes: usize) -> Tensor<2> {
    let [n] = index.dims();
    let device = index.device();
    let columns = Tensor::<1, Int>::arange(0..classes as i64, &device)
        .reshape([1, classes])
        .expand([n, classes]);
    columns
        .equal(index.reshape([n, 1]).expand([n, classes]))
        .float()
}

/// A confusion matrix (rows: true class, columns: predicted class) summed over the epoch.
#[derive(Default)]
pub struct Confusion {
    counts: Option<Tensor<2>>,
}

impl Confusion {
    /// Adds a batch of scores and labels.
    pub fn update(&mut self, scores: Tensor<2>, labels: Tensor<1, Int>) -> Result<()> {
        let [n, classes] = scores.dims();
        if labels.dims() != [n] {
            return Err(StokerError::msg(format!(
                "{n} rows of scores but labels of shape {:?}",
                labels.dims()
            )));
        }
        let predicted = scores.detach().argmax(1).reshape([n]);
        let batch = one_hot(labels, classes)
            .transpose()
            .matmul(one_hot(predicted, classes));
        self.counts = Some(match self.counts.take() {
            Some(c) => c + batch,
            None => batch,
        });
        Ok(())
    }

    /// The counts, read from the device.
    pub fn matrix(&self) -> Result<Option<Vec<Vec<f64>>>> {
        let Some(counts) = self.counts.clone() else {
            return Ok(None);
        };
        let [c, _] = counts.dims();
        let values = counts
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| StokerError::msg(format!("confusion matrix: {e:?}")))?;
        Ok(Some(values.chunks(c).map(<[f64]>::to_vec).collect()))
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.counts = None;
    }

    /// The counts summed over the processes (see `Metric::reduce`).
    pub fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        let own = self.matrix()?.map(|m| m.concat());
        self.counts = sum_sized(reducer, own)?.map(|values| {
            let c = (values.len() as f64).sqrt().round() as usize;
            let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
            Tensor::from_data(TensorData::new(values, [c, c]), device)
        });
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!(self.matrix()?))
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.counts = match state.as_array() {
            None => None,
            Some(rows) => {
                let c = rows.len();
                let values: Vec<f32> = rows
                    .iter()
                    .flat_map(|r| {
                        r.as_array()
                            .into_iter()
                            .flatten()
                            .map(|v| v.as_f64().unwrap_or(0.0) as f32)
                    })
                    .collect();
                Some(Tensor::from_data(TensorData::new(values, [c, c]), device))
            }
        };
        Ok(())
    }
}

/// Per-class precision, recall and F1 and the support, from a confusion matrix.
pub struct PerClass {
    /// tp / predicted, 0 when nothing was predicted as the class.
    pub precision: Vec<f64>,
    /// tp / support, 0 without support.
    pub recall: Vec<f64>,
    /// 2 tp / (2 tp + fp + fn), 0 when undefined.
    pub f1: Vec<f64>,
    /// Samples of each class.
    pub support: Vec<f64>,
    /// Whether the class appears in the labels or the predictions.
    pub present: Vec<bool>,
    /// Correct predictions over all samples.
    pub accuracy: f64,
}

/// Precision, recall and F1 per class.
pub fn per_class(m: &[Vec<f64>]) -> PerClass {
    let c = m.len();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let tp: Vec<f64> = (0..c).map(|i| m[i][i]).collect();
    let support: Vec<f64> = (0..c).map(|i| m[i].iter().sum()).collect();
    let predicted: Vec<f64> = (0..c).map(|j| (0..c).map(|i| m[i][j]).sum()).collect();
    let total: f64 = support.iter().sum();
    PerClass {
        precision: (0..c).map(|i| ratio(tp[i], predicted[i])).collect(),
        recall: (0..c).map(|i| ratio(tp[i], support[i])).collect(),
        f1: (0..c)
            .map(|i| ratio(2.0 * tp[i], support[i] + predicted[i]))
            .collect(),
        present: (0..c)
            .map(|i| support[i] > 0.0 || predicted[i] > 0.0)
            .collect(),
        accuracy: ratio(tp.iter().sum(), total),
        support,
    }
}

/// How per-class values are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Average {
    /// The plain mean over the classes present.
    #[default]
    Macro,
    /// From the totals over all classes (for single-label data: the accuracy).
    Micro,
    /// The mean weighted by each class's support.
    Weighted,
}

impl Average {
    fn name(self) -> &'static str {
        match self {
            Average::Macro => "macro",
            Average::Micro => "micro",
            Average::Weighted => "weighted",
        }
    }

    /// Combines per-class `values`.
    pub fn combine(self, values: &[f64], stats: &PerClass) -> f64 {
        match self {
            Average::Micro => stats.accuracy,
            Average::Macro => {
                let present: Vec<f64> = values
                    .iter()
                    .zip(&stats.present)
                    .filter(|(_, p)| **p)
                    .map(|(v, _)| *v)
                    .collect();
                present.iter().sum::<f64>() / present.len().max(1) as f64
            }
            Average::Weighted => {
                let total: f64 = stats.support.iter().sum();
                values
                    .iter()
                    .zip(&stats.support)
                    .map(|(v, s)| v * s)
                    .sum::<f64>()
                    / total.max(f64::MIN_POSITIVE)
            }
        }
    }
}

/// Which score a [`ConfusionMetric`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Score {
    Precision(Average),
    Recall(Average),
    F1(Average),
    PerClass,
    Matrix,
}

/// A metric computed from the epoch's confusion matrix.
pub struct ConfusionMetric {
    score: Score,
    pred: String,
    target: String,
    confusion: Confusion,
}

impl Metric for ConfusionMetric {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let scores = step.output.float::<2>(&self.pred)?;
        self.confusion
            .update(scores, labels(step.batch, &self.target)?)
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        let Some(m) = self.confusion.matrix()? else {
            return Ok(Vec::new());
        };
        let stats = per_class(&m);
        Ok(match self.score {
            Score::Precision(a) => vec![(
                format!("precision_{}", a.name()),
                a.combine(&stats.precision, &stats),
            )],
            Score::Recall(a) => vec![(
                format!("recall_{}", a.name()),
                a.combine(&stats.recall, &stats),
            )],
            Score::F1(a) => vec![(format!("f1_{}", a.name()), a.combine(&stats.f1, &stats))],
            Score::PerClass => (0..m.len())
                .flat_map(|i| {
                    [
                        (format!("precision_class{i}"), stats.precision[i]),
                        (format!("recall_class{i}"), stats.recall[i]),
                        (format!("f1_class{i}"), stats.f1[i]),
                    ]
                })
                .collect(),
            Score::Matrix => Vec::new(),
        })
    }

    fn reset(&mut self) {
        self.confusion.reset();
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        self.confusion.reduce(reducer, device)
    }

    fn state(&self) -> Result<serde_json::Value> {
        self.confusion.state()
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.confusion.load_state(state, device)
    }

    fn artifacts(&mut self) -> Result<Vec<(String, String)>> {
        if self.score != Score::Matrix {
            return Ok(Vec::new());
        }
        let Some(m) = self.confusion.matrix()? else {
            return Ok(Vec::new());
        };
        let c = m.len();
        let mut csv = String::from("true\\predicted");
        for j in 0..c {
            csv.push_str(&format!(",{j}"));
        }
        csv.push('\n');
        for (i, row) in m.iter().enumerate() {
            csv.push_str(&i.to_string());
            for v in row {
                csv.push_str(&format!(",{}", *v as u64));
            }
            csv.push('\n');
        }
        Ok(vec![("confusion_matrix".into(), csv)])
    }
}

fn build(
    score: Score,
    pred: &str,
    target: &str,
    ctx: &BuildContext,
) -> std::result::Result<Box<dyn Metric>, BuildError> {
    ctx.data()?.require_kind(
        "target",
        target,
        ElementKind::Int,
        "classification metrics need integer class labels",
    )?;
    Ok(Box::new(ConfusionMetric {
        score,
        pred: pred.into(),
        target: target.into(),
        confusion: Confusion::default(),
    }))
}

macro_rules! averaged {
    ($spec:ident, $name:literal, $variant:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Serialize, Deserialize, Component)]
        #[serde(deny_unknown_fields)]
        #[component(metric, name = $name)]
        pub struct $spec {
            /// `macro`, `micro` or `weighted`; logged as <name>_<average>.
            #[serde(default)]
            pub average: Average,
            /// The model output holding the class scores.
            #[serde(default = "default_pred")]
            pub pred: String,
            /// The batch tensor holding the integer labels.
            #[serde(default = "default_target")]
            pub target: String,
        }

        impl MetricSpec for $spec {
            fn build(
                &self,
                ctx: &BuildContext,
            ) -> std::result::Result<Box<dyn Metric>, BuildError> {
                build(Score::$variant(self.average), &self.pred, &self.target, ctx)
            }
        }
    };
}

averaged!(
    PrecisionSpec,
    "precision",
    Precision,
    "Precision over the epoch (macro, micro or weighted average over classes), as sklearn's precision_score."
);
averaged!(
    RecallSpec,
    "recall",
    Recall,
    "Recall over the epoch (macro, micro or weighted average over classes), as sklearn's recall_score."
);
averaged!(
    F1Spec,
    "f1",
    F1,
    "F1 score over the epoch (macro, micro or weighted average over classes), as sklearn's f1_score."
);

/// Precision, recall and F1 of every class over the epoch, logged as precision_class<i>, recall_class<i>, f1_class<i>.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "per_class")]
pub struct PerClassSpec {
    /// The model output holding the class scores.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
}

impl MetricSpec for PerClassSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        build(Score::PerClass, &self.pred, &self.target, ctx)
    }
}

/// The epoch's confusion matrix (rows: true class, columns: predicted), saved with the run as confusion_matrix_<split>.csv.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "confusion_matrix")]
pub struct ConfusionMatrixSpec {
    /// The model output holding the class scores.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
}

impl MetricSpec for ConfusionMatrixSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        build(Score::Matrix, &self.pred, &self.target, ctx)
    }
}

fn default_k() -> usize {
    5
}

/// Fraction of the epoch's samples whose label is among the k highest scores, logged as top<k>_accuracy; as sklearn's top_k_accuracy_score.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "top_k_accuracy")]
pub struct TopKSpec {
    /// How many of the highest scores count.
    #[serde(default = "default_k")]
    pub k: usize,
    /// The model output holding the class scores.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
}

/// Top-k accuracy over the epoch.
pub struct TopK {
    spec: TopKSpec,
    hits: DeviceCount,
}

impl Metric for TopK {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let scores = step.output.float::<2>(&self.spec.pred)?.detach();
        let [n, classes] = scores.dims();
        let labels = labels(step.batch, &self.spec.target)?;
        let own = scores.clone().gather(1, labels.reshape([n, 1]));
        // The label is in the top k when fewer than k classes score higher.
        let higher = scores
            .greater(own.expand([n, classes]))
            .int()
            .sum_dim(1)
            .reshape([n]);
        let hits = higher.lower_elem(self.spec.k as i64).int().sum();
        self.hits.add(hits, n);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        Ok(self
            .hits
            .fraction()
            .map(|v| (format!("top{}_accuracy", self.spec.k), v))
            .into_iter()
            .collect())
    }

    fn reset(&mut self) {
        self.hits.reset();
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        self.hits.reduce(reducer, device)
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(self.hits.state())
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.hits.load_state(state, device)
    }
}

impl MetricSpec for TopKSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        if self.k == 0 {
            return Err(BuildError::at("k", "must be at least 1"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Int,
            "top_k_accuracy needs integer class labels",
        )?;
        Ok(Box::new(TopK {
            spec: self.clone(),
            hits: DeviceCount::default(),
        }))
    }
}
