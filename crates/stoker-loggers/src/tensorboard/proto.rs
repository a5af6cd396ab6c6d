//! The TensorBoard records stoker writes, as `prost` messages with the field numbers of
//! TensorFlow's `event.proto`, `summary.proto`, `tensor.proto` and TensorBoard's hparams
//! `plugin_data.proto`/`api.proto`. Only the fields stoker sets are declared; a reader skips
//! nothing it needs, since absent fields are simply not written.

use std::collections::BTreeMap;

use prost::{Message, Oneof};

/// `tensorflow.Event`.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    /// Seconds since the epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds.
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, Oneof)]
pub enum What {
    /// `brain.Event:2`, the first event of a file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Values.
    #[prost(message, tag = "5")]
    Summary(Summary),
    /// A session start (after a resume: readers drop what was logged at later steps before).
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorflow.SessionLog`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionLog {
    /// `START` = 1.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// The checkpoint.
    #[prost(string, tag = "2")]
    pub checkpoint_path: String,
    /// A message.
    #[prost(string, tag = "3")]
    pub msg: String,
}

/// `SessionLog.SessionStatus.START`.
pub const SESSION_START: i32 = 1;

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    /// The tag (`val_loss`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin reads it.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value.
    #[prost(oneof = "ValueKind", tags = "2, 4, 5, 8")]
    pub value: Option<ValueKind>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, Oneof)]
pub enum ValueKind {
    /// A scalar.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// An encoded image.
    #[prost(message, tag = "4")]
    Image(Image),
    /// A histogram.
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
    /// A tensor (text).
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorflow.Summary.Image`.
#[derive(Clone, PartialEq, Message)]
pub struct Image {
    /// Pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `tensorflow.HistogramProto`: bucket `i` holds the values up to `bucket_limit[i]` (and above
/// the previous limit, or `min` for the first).
#[derive(Clone, PartialEq, Message)]
pub struct HistogramProto {
    /// The smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// The largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// How many values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Their sum.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// The sum of their squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Each bucket's right edge.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Each bucket's count.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// `tensorflow.SummaryMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    /// The plugin that reads the value.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    /// `text`, `hparams`.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// The plugin's own message, serialized.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorflow.TensorProto`, for string tensors.
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    /// `DT_STRING` = 7.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// The strings.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `DataType.DT_STRING`.
pub const DT_STRING: i32 = 7;

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    /// The dimensions.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

/// `TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, Message)]
pub struct Dim {
    /// Its size.
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// `tensorboard.hparams.HParamsPluginData`.
#[derive(Clone, PartialEq, Message)]
pub struct HParamsPluginData {
    /// 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// What it holds.
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    pub data: Option<HParamsData>,
}

/// `HParamsPluginData.data`.
#[derive(Clone, PartialEq, Oneof)]
pub enum HParamsData {
    /// The hyperparameters and metrics the table shows.
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    /// This run's hyperparameter values.
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    /// How this run ended.
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

/// `tensorboard.hparams.Experiment`.
#[derive(Clone, PartialEq, Message)]
pub struct Experiment {
    /// Seconds since the epoch.
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    /// The hyperparameters.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// The metrics.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// `tensorboard.hparams.HParamInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct HParamInfo {
    /// `optimizer.args.lr`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// 1 string, 2 bool, 3 float64.
    #[prost(int32, tag = "4")]
    pub r#type: i32,
}

/// `tensorboard.hparams.MetricInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricInfo {
    /// The scalar's tag.
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
}

/// `tensorboard.hparams.MetricName`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricName {
    /// The run subdirectory ("" for the run itself).
    #[prost(string, tag = "1")]
    pub group: String,
    /// The scalar's tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionStartInfo {
    /// The hyperparameter values.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, ProtoValue>,
    /// The run's group.
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// Seconds since the epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionEndInfo {
    /// 0 unknown, 1 success, 2 failure, 3 running.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// Seconds since the epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value`, for the kinds hyperparameters take.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoValue {
    /// The value.
    #[prost(oneof = "Kind", tags = "2, 3, 4")]
    pub kind: Option<Kind>,
}

/// `google.protobuf.Value.kind`.
#[derive(Clone, PartialEq, Oneof)]
pub enum Kind {
    /// A number.
    #[prost(double, tag = "2")]
    NumberValue(f64),
    /// A string.
    #[prost(string, tag = "3")]
    StringValue(String),
    /// A boolean.
    #[prost(bool, tag = "4")]
    BoolValue(bool),
}

/// `HParamInfo.type`: string.
pub const DATA_TYPE_STRING: i32 = 1;
/// `HParamInfo.type`: bool.
pub const DATA_TYPE_BOOL: i32 = 2;
/// `HParamInfo.type`: float64.
pub const DATA_TYPE_FLOAT64: i32 = 3;

/// Serializes a plugin's message for [`PluginData::content`].
pub fn encode(message: &impl Message) -> Vec<u8> {
    message.encode_to_vec()
}
