//! The CHIDS autoencoder over anomaly vectors `[FI, USI, UAI]`, and the
//! threshold grid derived from its training errors.
//!
//! Architecture (as the reference builds it with Keras): Dense 3→2 → 2→1 →
//! 1→1 → 1→2 → 2→3, every layer sigmoid, L1 activity regularisation 0.01 on
//! the first layer's output, MSE loss, Adam, batch 50, 120 epochs, the last
//! 20 % of rows held out for validation.
//!
//! Why hand-written and not an ML crate: the whole network has 26
//! parameters. Forward, backward and Adam fit in a couple of hundred lines,
//! run single-threaded in well under a second, and — the point that matters
//! for a detector whose thresholds come from the training errors — we control
//! every floating-point operation, so results are bit-reproducible for a seed
//! and the inference path can follow numpy's float32 forward pass operation
//! by operation. A framework dependency would buy none of that and cost
//! compile time, binary size and determinism guarantees.
//!
//! Numeric choices (all mirroring Keras 2.9 / TF 2.9 as the reference ran):
//! * Inputs are cast to `f32` (Keras casts float64 numpy input to the
//!   layer dtype float32); forward, loss, backward and Adam run in `f32`.
//! * A Dense layer computes `sigmoid(x·W + b)` with the dot product
//!   accumulated left to right, the bias added last, and
//!   `sigmoid(z) = 1 / (1 + exp(-z))` in `f32`, like a numpy float32 pass.
//! * Loss per batch = mean over batch of (mean over the 3 outputs of the
//!   squared error) + `l1 · Σ_batch Σ_units |h1| / batch_len`. Keras'
//!   `activity_regularizer=l1(0.01)` returns `0.01·sum(|h1|)` over the whole
//!   batch tensor, and `Layer._handle_activity_regularization` divides it by
//!   the batch size before `add_loss`, i.e. the regulariser is a per-sample
//!   mean just like the MSE. (h1 is a sigmoid output, so |h1| = h1 and its
//!   derivative is 1; we still use `signum` with TF's `sign(0) = 0`.)
//! * Adam is TF's `ResourceApplyAdam` kernel, which Keras' `Adam` calls:
//!   `alpha = lr·sqrt(1-β2^t)/(1-β1^t)`, `m += (g-m)(1-β1)`,
//!   `v += (g²-v)(1-β2)`, `w -= alpha·m / (sqrt(v) + ε)`. ε is therefore
//!   added to `sqrt(v)` (the paper's "epsilon hat"), which equals
//!   `sqrt(v̂) + ε/sqrt(1-β2^t)` in bias-corrected notation, not
//!   `sqrt(v̂) + ε`.
//! * Validation split as Keras `validation_split`: the first
//!   `floor(n·(1-split))` rows train, the rest validate (no shuffle before
//!   the split); training rows are reshuffled every epoch; the last batch of
//!   an epoch may be short. The reported epoch loss is the batch-size
//!   weighted mean of the pre-update batch losses (what Keras prints);
//!   validation loss is computed after the epoch's updates.
//!
//! Training can never be bit-identical to the reference: TF's init and
//! shuffles are unseeded there. Inference parity (same weights → same
//! errors) is what `tests/model_parity.rs` checks.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// `(fan_in, fan_out)` of the 5 Dense layers.
const LAYERS: [(usize, usize); 5] = [(3, 2), (2, 1), (1, 1), (1, 2), (2, 3)];
/// Offset of each layer's kernel in the flat parameter array; the bias
/// follows its kernel (`in·out` values, row-major `[in][out]`, then `out`).
const PARAM_OFF: [usize; 5] = param_offsets();
/// 3·2+2 + 2·1+1 + 1·1+1 + 1·2+2 + 2·3+3.
const N_PARAMS: usize = 26;
/// Activations of one sample: input (3), then each layer's output.
const ACT_OFF: [usize; 6] = [0, 3, 5, 6, 7, 9];
const N_ACT: usize = 12;
/// Activation offset of the network output (last layer).
const OUT_OFF: usize = ACT_OFF[5];
/// Activation offset of the regularised first hidden layer.
const H1_OFF: usize = ACT_OFF[1];

const fn param_offsets() -> [usize; 5] {
    let mut off = [0; 5];
    let mut acc = 0;
    let mut l = 0;
    while l < 5 {
        off[l] = acc;
        acc += LAYERS[l].0 * LAYERS[l].1 + LAYERS[l].1;
        l += 1;
    }
    assert!(acc == N_PARAMS);
    off
}

/// Adam β1, β2, ε: Keras defaults, fixed by the reference.
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-7;

/// Errors of the model stage.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no training vectors: the autoencoder needs at least one non-empty window")]
    EmptyInput,
    #[error(
        "{rows} training vector(s) are too few for validation_split {split}: \
         no rows would be left to train on (Keras rejects this too)"
    )]
    TooFewRows { rows: usize, split: f64 },
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    #[error("training vector {index} is not finite in float32: {vector:?}")]
    NonFiniteInput { index: usize, vector: [f64; 3] },
    #[error("training diverged: parameter {index} became {value} after epoch {epoch}")]
    Diverged {
        index: usize,
        value: f32,
        epoch: usize,
    },
    #[error("layer dense_{layer}: {message}")]
    BadLayer { layer: usize, message: String },
    #[error("model file is not a valid safetensors buffer: {0}")]
    Safetensors(String),
    #[error("model file lacks tensor {0:?}")]
    MissingTensor(String),
    #[error(
        "model file has unexpected tensor {0:?} (expected only dense_0..dense_4 .kernel/.bias)"
    )]
    UnexpectedTensor(String),
    #[error("model tensor {name:?} has dtype {found}, expected F32")]
    WrongDtype { name: String, found: String },
    #[error("model tensor {name:?} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("model tensor {name:?} holds a non-finite value ({value}) at element {index}")]
    NonFiniteWeight {
        name: String,
        index: usize,
        value: f32,
    },
}

/// Hyper-parameters of [`Autoencoder::fit`]. `Default` is the reference's
/// setting.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    /// Fraction of rows, taken from the END of the input, held out for
    /// validation (Keras `validation_split`). `0.0` disables validation.
    pub validation_split: f64,
    /// L1 activity regularisation factor on the first layer's output.
    pub l1_activity: f32,
    /// Seeds the weight initialisation and the per-epoch shuffles.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 120,
            batch_size: 50,
            learning_rate: 0.001,
            validation_split: 0.2,
            l1_activity: 0.01,
            seed: 0,
        }
    }
}

/// What [`Autoencoder::fit`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    pub epochs: usize,
    pub train_rows: usize,
    pub validation_rows: usize,
    /// Training loss (MSE + L1 activity term) of the last epoch, as Keras
    /// reports it; NaN if `epochs == 0`.
    pub final_loss: f64,
    /// Validation loss after the last epoch; `None` without validation rows
    /// or epochs.
    pub final_val_loss: Option<f64>,
}

/// The trained 3→2→1→1→2→3 sigmoid autoencoder (26 `f32` parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct Autoencoder {
    params: [f32; N_PARAMS],
}

// ---------------------------------------------------------------------------
// Numeric core, generic so the gradient check can run the very same code in
// f64 (where finite differences are accurate enough to catch real bugs).

trait Real:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn exp(self) -> Self;
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

fn sigmoid<T: Real>(z: T) -> T {
    T::ONE / (T::ONE + (-z).exp())
}

/// TF's `sign`: the subgradient of |x| it uses, 0 at 0.
fn sign<T: Real>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else {
        T::ZERO
    }
}

/// All activations of one sample (input included).
fn forward<T: Real>(p: &[T; N_PARAMS], x: &[T; 3]) -> [T; N_ACT] {
    let mut a = [T::ZERO; N_ACT];
    a[..3].copy_from_slice(x);
    for (l, &(ni, no)) in LAYERS.iter().enumerate() {
        let (w, b) = (PARAM_OFF[l], PARAM_OFF[l] + ni * no);
        let (ai, ao) = (ACT_OFF[l], ACT_OFF[l + 1]);
        for j in 0..no {
            // x·W accumulated left to right, bias added after the product
            // (matmul then bias_add, as numpy `x @ W + b` and Keras Dense).
            let mut z = a[ai] * p[w + j];
            for i in 1..ni {
                z = z + a[ai + i] * p[w + i * no + j];
            }
            a[ao + j] = sigmoid(z + p[b + j]);
        }
    }
    a
}

/// Loss of one sample: (MSE over the outputs, L1 activity sum of h1).
fn sample_loss<T: Real>(a: &[T; N_ACT]) -> (T, T) {
    let three = T::from_f64(3.0);
    let mut se = T::ZERO;
    for k in 0..3 {
        let d = a[OUT_OFF + k] - a[k];
        se = se + d * d;
    }
    let mut l1 = T::ZERO;
    for j in 0..LAYERS[0].1 {
        let h = a[H1_OFF + j];
        l1 = l1 + if h < T::ZERO { -h } else { h };
    }
    (se / three, l1)
}

/// Adds this sample's contribution to `grad` for the batch loss
/// `(1/B)·Σ_samples [mse + l1·Σ|h1|]`; `inv_b` = 1/B.
fn backward<T: Real>(p: &[T; N_PARAMS], a: &[T; N_ACT], l1: T, inv_b: T, grad: &mut [T; N_PARAMS]) {
    // delta[k] = dL/d(activation k).
    let mut delta = [T::ZERO; N_ACT];
    let two_thirds = T::from_f64(2.0) / T::from_f64(3.0);
    for k in 0..3 {
        // The target is the (f32-cast) input itself.
        delta[OUT_OFF + k] = two_thirds * (a[OUT_OFF + k] - a[k]) * inv_b;
    }
    for j in 0..LAYERS[0].1 {
        delta[H1_OFF + j] = l1 * sign(a[H1_OFF + j]) * inv_b;
    }
    for l in (0..LAYERS.len()).rev() {
        let (ni, no) = LAYERS[l];
        let (w, b) = (PARAM_OFF[l], PARAM_OFF[l] + ni * no);
        let (ai, ao) = (ACT_OFF[l], ACT_OFF[l + 1]);
        for j in 0..no {
            let y = a[ao + j];
            let dz = delta[ao + j] * y * (T::ONE - y);
            grad[b + j] = grad[b + j] + dz;
            for i in 0..ni {
                grad[w + i * no + j] = grad[w + i * no + j] + a[ai + i] * dz;
                // delta of the input layer (l == 0) is computed but unused.
                delta[ai + i] = delta[ai + i] + p[w + i * no + j] * dz;
            }
        }
    }
}

/// Batch loss and gradient (used by training and by the gradient check).
fn batch_loss_grad<T: Real>(p: &[T; N_PARAMS], rows: &[[T; 3]], l1: T) -> (T, [T; N_PARAMS]) {
    let mut grad = [T::ZERO; N_PARAMS];
    let inv_b = T::ONE / T::from_f64(rows.len() as f64);
    let (mut mse, mut act) = (T::ZERO, T::ZERO);
    for x in rows {
        let a = forward(p, x);
        let (m, s) = sample_loss(&a);
        mse = mse + m;
        act = act + s;
        backward(p, &a, l1, inv_b, &mut grad);
    }
    (mse * inv_b + l1 * act * inv_b, grad)
}

/// Mean loss over `rows` in f64 (reporting only).
fn mean_loss(p: &[f32; N_PARAMS], rows: &[[f32; 3]], l1: f32) -> f64 {
    let mut total = 0.0f64;
    for x in rows {
        let (m, s) = sample_loss(&forward(p, x));
        total += m as f64 + l1 as f64 * s as f64;
    }
    total / rows.len() as f64
}

// ---------------------------------------------------------------------------

/// Keras `glorot_uniform` kernels (U(-limit, limit), limit =
/// sqrt(6/(fan_in+fan_out))) and zero biases, drawn layer by layer, kernel
/// row-major.
fn glorot_init(rng: &mut ChaCha8Rng) -> [f32; N_PARAMS] {
    let mut p = [0.0f32; N_PARAMS];
    for (l, &(ni, no)) in LAYERS.iter().enumerate() {
        let limit = (6.0f64 / (ni + no) as f64).sqrt() as f32;
        for v in &mut p[PARAM_OFF[l]..PARAM_OFF[l] + ni * no] {
            *v = rng.gen_range(-limit..limit);
        }
    }
    p
}

fn tensor_names(l: usize) -> (String, String) {
    (format!("dense_{l}.kernel"), format!("dense_{l}.bias"))
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), ModelError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ModelError::NonFiniteWeight {
            name: name.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

impl Autoencoder {
    /// A freshly initialised (untrained) model: Keras default init from a
    /// `ChaCha8Rng` seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Autoencoder {
            params: glorot_init(&mut rng),
        }
    }

    /// Builds a model from Keras-layout weights: 5 `(kernel [in][out],
    /// bias [out])` pairs in layer order. Shapes and finiteness are checked.
    pub fn from_layers(layers: &[(Vec<Vec<f32>>, Vec<f32>)]) -> Result<Self, ModelError> {
        if layers.len() != LAYERS.len() {
            return Err(ModelError::BadLayer {
                layer: layers.len().min(LAYERS.len()),
                message: format!("expected {} layers, got {}", LAYERS.len(), layers.len()),
            });
        }
        let mut params = [0.0f32; N_PARAMS];
        for (l, ((kernel, bias), &(ni, no))) in layers.iter().zip(LAYERS.iter()).enumerate() {
            let bad = |message: String| ModelError::BadLayer { layer: l, message };
            if kernel.len() != ni || kernel.iter().any(|row| row.len() != no) {
                return Err(bad(format!(
                    "kernel must be [{ni}][{no}], got {} rows of lengths {:?}",
                    kernel.len(),
                    kernel.iter().map(Vec::len).collect::<Vec<_>>()
                )));
            }
            if bias.len() != no {
                return Err(bad(format!(
                    "bias must have {no} values, got {}",
                    bias.len()
                )));
            }
            let (kn, bn) = tensor_names(l);
            let flat: Vec<f32> = kernel.iter().flatten().copied().collect();
            check_finite(&kn, &flat)?;
            check_finite(&bn, bias)?;
            params[PARAM_OFF[l]..PARAM_OFF[l] + ni * no].copy_from_slice(&flat);
            params[PARAM_OFF[l] + ni * no..PARAM_OFF[l] + ni * no + no].copy_from_slice(bias);
        }
        Ok(Autoencoder { params })
    }

    /// Trains a new model on `vectors` (in order; the last
    /// `validation_split` of them are held out). `on_epoch(epoch, loss,
    /// val_loss)` is called after every epoch with a 1-based epoch number.
    /// Single-threaded and bit-reproducible for a given input and seed.
    pub fn fit(
        vectors: &[[f64; 3]],
        cfg: &TrainConfig,
        on_epoch: &mut dyn FnMut(usize, f64, Option<f64>),
    ) -> Result<(Autoencoder, TrainReport), ModelError> {
        if vectors.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if cfg.batch_size == 0 {
            return Err(ModelError::InvalidConfig(
                "batch_size must be at least 1".into(),
            ));
        }
        if !(0.0..1.0).contains(&cfg.validation_split) {
            return Err(ModelError::InvalidConfig(format!(
                "validation_split must be in [0, 1), got {}",
                cfg.validation_split
            )));
        }
        if !cfg.learning_rate.is_finite() || cfg.learning_rate < 0.0 {
            return Err(ModelError::InvalidConfig(format!(
                "learning_rate must be finite and >= 0, got {}",
                cfg.learning_rate
            )));
        }
        if !cfg.l1_activity.is_finite() || cfg.l1_activity < 0.0 {
            return Err(ModelError::InvalidConfig(format!(
                "l1_activity must be finite and >= 0, got {}",
                cfg.l1_activity
            )));
        }
        // Keras casts the float64 matrix to float32 before anything else.
        let mut rows: Vec<[f32; 3]> = Vec::with_capacity(vectors.len());
        for (index, v) in vectors.iter().enumerate() {
            let x = v.map(|c| c as f32);
            if x.iter().any(|c| !c.is_finite()) {
                return Err(ModelError::NonFiniteInput { index, vector: *v });
            }
            rows.push(x);
        }
        // Keras `train_validation_split`: split_at = floor(n·(1-split)).
        let n = rows.len();
        let split_at = if cfg.validation_split > 0.0 {
            (n as f64 * (1.0 - cfg.validation_split)).floor() as usize
        } else {
            n
        };
        if split_at == 0 {
            return Err(ModelError::TooFewRows {
                rows: n,
                split: cfg.validation_split,
            });
        }
        let (train, val) = rows.split_at(split_at);

        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut p = glorot_init(&mut rng);
        let mut m = [0.0f32; N_PARAMS];
        let mut v = [0.0f32; N_PARAMS];
        let mut step: u64 = 0;
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut batch: Vec<[f32; 3]> = Vec::with_capacity(cfg.batch_size);
        let (mut final_loss, mut final_val_loss) = (f64::NAN, None);

        for epoch in 1..=cfg.epochs {
            order.shuffle(&mut rng);
            let mut epoch_loss = 0.0f64;
            for chunk in order.chunks(cfg.batch_size) {
                batch.clear();
                batch.extend(chunk.iter().map(|&i| train[i]));
                let (loss, g) = batch_loss_grad(&p, &batch, cfg.l1_activity);
                epoch_loss += loss as f64 * batch.len() as f64;

                // TF ResourceApplyAdam; β^t in f32 like Keras' tf.pow on
                // the float32 hyper-parameters.
                step += 1;
                let t = step as f32;
                let b1p = BETA1.powf(t);
                let b2p = BETA2.powf(t);
                let alpha = cfg.learning_rate * (1.0 - b2p).sqrt() / (1.0 - b1p);
                for k in 0..N_PARAMS {
                    m[k] += (g[k] - m[k]) * (1.0 - BETA1);
                    v[k] += (g[k] * g[k] - v[k]) * (1.0 - BETA2);
                    p[k] -= (m[k] * alpha) / (v[k].sqrt() + EPSILON);
                }
            }
            if let Some(index) = p.iter().position(|x| !x.is_finite()) {
                return Err(ModelError::Diverged {
                    index,
                    value: p[index],
                    epoch,
                });
            }
            final_loss = epoch_loss / train.len() as f64;
            final_val_loss = (!val.is_empty()).then(|| mean_loss(&p, val, cfg.l1_activity));
            on_epoch(epoch, final_loss, final_val_loss);
        }

        let report = TrainReport {
            epochs: cfg.epochs,
            train_rows: train.len(),
            validation_rows: val.len(),
            final_loss,
            final_val_loss,
        };
        Ok((Autoencoder { params: p }, report))
    }

    /// The model output for `v` (cast to f32 first, as Keras does).
    pub(crate) fn reconstruct(&self, v: &[f64; 3]) -> [f32; 3] {
        let a = forward(&self.params, &v.map(|c| c as f32));
        [a[OUT_OFF], a[OUT_OFF + 1], a[OUT_OFF + 2]]
    }

    /// mean over the 3 components of (f32 prediction − f64 input)², computed in f64
    /// (the reference: `np.mean(np.power(X - pred, 2), axis=…)` with X
    /// float64 and pred float32, summed left to right then divided by 3).
    pub fn reconstruction_error(&self, v: &[f64; 3]) -> f64 {
        let y = self.reconstruct(v);
        let mut s = 0.0f64;
        for k in 0..3 {
            let d = y[k] as f64 - v[k];
            s += d * d;
        }
        s / 3.0
    }

    /// Serialises the weights as safetensors: `dense_{i}.kernel` `[in, out]`
    /// and `dense_{i}.bias` `[out]`, F32 little-endian, i = 0..4.
    pub(crate) fn to_safetensors(&self) -> Vec<u8> {
        let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(10);
        for (l, &(ni, no)) in LAYERS.iter().enumerate() {
            let (kn, bn) = tensor_names(l);
            let (w, b) = (PARAM_OFF[l], PARAM_OFF[l] + ni * no);
            let le = |s: &[f32]| s.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            bytes.push((kn, vec![ni, no], le(&self.params[w..b])));
            bytes.push((bn, vec![no], le(&self.params[b..b + no])));
        }
        let views = bytes.iter().map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("shape and byte length are built to match");
            (name.as_str(), view)
        });
        // Cannot fail: only in-memory F32 views with consistent shapes.
        safetensors::serialize(views, &None).expect("serialising in-memory F32 tensors")
    }

    /// Loads weights written by [`to_safetensors`](Self::to_safetensors).
    /// Every expected tensor must be present with dtype F32, the right
    /// shape and finite values; any other tensor is rejected.
    pub(crate) fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelError> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors(e.to_string()))?;
        let mut expected = BTreeSet::new();
        let mut params = [0.0f32; N_PARAMS];
        for (l, &(ni, no)) in LAYERS.iter().enumerate() {
            let (kn, bn) = tensor_names(l);
            let w = PARAM_OFF[l];
            for (name, shape, off) in [(kn, vec![ni, no], w), (bn, vec![no], w + ni * no)] {
                let view = st
                    .tensor(&name)
                    .map_err(|_| ModelError::MissingTensor(name.clone()))?;
                if view.dtype() != Dtype::F32 {
                    return Err(ModelError::WrongDtype {
                        name,
                        found: format!("{:?}", view.dtype()),
                    });
                }
                if view.shape() != shape.as_slice() {
                    return Err(ModelError::WrongShape {
                        name,
                        found: view.shape().to_vec(),
                        expected: shape,
                    });
                }
                // safetensors has validated data length = product(shape)·4.
                let values: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                check_finite(&name, &values)?;
                params[off..off + values.len()].copy_from_slice(&values);
                expected.insert(name);
            }
        }
        if let Some(extra) = st.names().into_iter().find(|n| !expected.contains(*n)) {
            return Err(ModelError::UnexpectedTensor(extra.clone()));
        }
        Ok(Autoencoder { params })
    }
}

/// `theta × max_training_error` for every theta (numpy scalar × array).
pub fn thresholds(max_training_error: f64, thetas: &[f64]) -> Vec<f64> {
    thetas.iter().map(|t| max_training_error * t).collect()
}

/// The reference's theta grid, `np.arange(0.2, 2.2, 0.2)`, bit for bit.
pub fn default_thetas() -> Vec<f64> {
    numpy_arange(0.2, 2.2, 0.2)
}

/// numpy's float `arange`: length `ceil((stop-start)/step)`, values
/// `start + i·delta` with `delta = (start+step) - start` (numpy fills the
/// first two entries, then extrapolates from their difference). This is why
/// the grid holds 0.6000000000000001 rather than 0.6.
fn numpy_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len <= 0.0 {
        return Vec::new();
    }
    let len = len as usize;
    let delta = (start + step) - start;
    (0..len)
        .map(|i| match i {
            0 => start,
            1 => start + step,
            _ => start + i as f64 * delta,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(n: usize, seed: u64) -> Vec<[f64; 3]> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                [
                    rng.gen_range(0.0..0.2),
                    rng.gen_range(0.0..3.0),
                    rng.gen_range(0.0..1.0),
                ]
            })
            .collect()
    }

    fn quiet() -> impl FnMut(usize, f64, Option<f64>) {
        |_, _, _| {}
    }

    /// Analytic gradient vs central differences, in f64 through the same
    /// generic code the f32 trainer uses.
    #[test]
    fn gradient_matches_finite_differences() {
        let model = Autoencoder::new(7);
        // Perturb biases away from zero so every parameter matters.
        let mut p: [f64; N_PARAMS] = model.params.map(|x| x as f64);
        for (k, x) in p.iter_mut().enumerate() {
            *x += 0.1 * ((k as f64) * 0.37).sin();
        }
        let rows: Vec<[f64; 3]> = vectors(7, 3)
            .into_iter()
            .chain([[0.9, 4.0, 0.0], [0.0, 0.0, 0.0]])
            .collect();
        let l1 = 0.01f64;
        let (_, g) = batch_loss_grad(&p, &rows, l1);
        let h = 1e-6;
        for k in 0..N_PARAMS {
            let (mut plus, mut minus) = (p, p);
            plus[k] += h;
            minus[k] -= h;
            let num = (batch_loss_grad(&plus, &rows, l1).0 - batch_loss_grad(&minus, &rows, l1).0)
                / (2.0 * h);
            let err = (num - g[k]).abs();
            assert!(
                err <= 1e-7 + 1e-5 * num.abs(),
                "param {k}: analytic {} vs numeric {num} (diff {err})",
                g[k]
            );
        }
        // The check can fail: a wrong gradient (e.g. without the L1 term)
        // is detected.
        let (_, g_no_l1) = batch_loss_grad(&p, &rows, 0.0);
        let first_layer_diff = (0..8)
            .map(|k| (g[k] - g_no_l1[k]).abs())
            .fold(0.0, f64::max);
        assert!(
            first_layer_diff > 1e-4,
            "L1 term must change the first layer gradient"
        );
    }

    #[test]
    fn gradient_check_detects_a_broken_gradient() {
        let p: [f64; N_PARAMS] = Autoencoder::new(1).params.map(|x| x as f64);
        let rows = vectors(5, 9);
        let (_, mut g) = batch_loss_grad(&p, &rows, 0.01);
        g[3] *= 1.01; // a 1 % error in one kernel entry
        let h = 1e-6;
        let (mut plus, mut minus) = (p, p);
        plus[3] += h;
        minus[3] -= h;
        let num = (batch_loss_grad(&plus, &rows, 0.01).0 - batch_loss_grad(&minus, &rows, 0.01).0)
            / (2.0 * h);
        assert!((num - g[3]).abs() > 1e-7 + 1e-5 * num.abs());
    }

    #[test]
    fn glorot_init_limits_and_zero_bias() {
        let m = Autoencoder::new(42);
        for (l, &(ni, no)) in LAYERS.iter().enumerate() {
            let limit = (6.0f64 / (ni + no) as f64).sqrt() as f32;
            let w = PARAM_OFF[l];
            assert!(m.params[w..w + ni * no]
                .iter()
                .all(|x| x.abs() <= limit && *x != 0.0));
            assert!(m.params[w + ni * no..w + ni * no + no]
                .iter()
                .all(|x| *x == 0.0));
        }
        assert_ne!(Autoencoder::new(42), Autoencoder::new(43));
    }

    #[test]
    fn training_is_bit_deterministic_per_seed() {
        let data = vectors(230, 5);
        let cfg = TrainConfig {
            epochs: 15,
            seed: 11,
            ..TrainConfig::default()
        };
        let (a, ra) = Autoencoder::fit(&data, &cfg, &mut quiet()).unwrap();
        let (b, rb) = Autoencoder::fit(&data, &cfg, &mut quiet()).unwrap();
        assert_eq!(a.to_safetensors(), b.to_safetensors());
        assert_eq!(ra.final_loss.to_bits(), rb.final_loss.to_bits());
        let other = TrainConfig { seed: 12, ..cfg };
        let (c, _) = Autoencoder::fit(&data, &other, &mut quiet()).unwrap();
        assert_ne!(a.params, c.params);
    }

    #[test]
    fn fit_reports_split_and_reduces_loss() {
        let data = vectors(123, 8);
        let mut losses = Vec::new();
        let cfg = TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        };
        let (model, report) = Autoencoder::fit(&data, &cfg, &mut |e, l, v| {
            losses.push((e, l, v));
        })
        .unwrap();
        // floor(123 * 0.8) = 98
        assert_eq!((report.train_rows, report.validation_rows), (98, 25));
        assert_eq!(report.epochs, 60);
        assert_eq!(losses.len(), 60);
        assert_eq!(losses[0].0, 1);
        assert!(losses.iter().all(|(_, _, v)| v.is_some()));
        assert!(losses[59].1 < losses[0].1, "loss should fall: {losses:?}");
        assert_eq!(report.final_loss, losses[59].1);
        assert!(model.params.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn validation_uses_the_last_rows_only() {
        // Changing only held-out rows must not change the trained weights.
        let mut data = vectors(100, 4);
        let cfg = TrainConfig {
            epochs: 5,
            ..TrainConfig::default()
        };
        let (a, ra) = Autoencoder::fit(&data, &cfg, &mut quiet()).unwrap();
        data[85] = [0.5, 100.0, 50.0];
        let (b, rb) = Autoencoder::fit(&data, &cfg, &mut quiet()).unwrap();
        assert_eq!(a, b);
        assert_ne!(ra.final_val_loss, rb.final_val_loss);
        data[10] = [0.5, 100.0, 50.0];
        let (c, _) = Autoencoder::fit(&data, &cfg, &mut quiet()).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn fit_rejects_bad_input() {
        let cfg = TrainConfig::default();
        assert!(matches!(
            Autoencoder::fit(&[], &cfg, &mut quiet()),
            Err(ModelError::EmptyInput)
        ));
        // One row: floor(0.8) = 0 rows to train on.
        assert!(matches!(
            Autoencoder::fit(&[[0.1, 0.0, 0.0]], &cfg, &mut quiet()),
            Err(ModelError::TooFewRows { rows: 1, .. })
        ));
        let no_val = TrainConfig {
            validation_split: 0.0,
            epochs: 2,
            ..TrainConfig::default()
        };
        let (_, r) = Autoencoder::fit(&[[0.1, 0.0, 0.0]], &no_val, &mut quiet()).unwrap();
        assert_eq!(
            (r.train_rows, r.validation_rows, r.final_val_loss),
            (1, 0, None)
        );
        assert!(matches!(
            Autoencoder::fit(&[[f64::NAN, 0.0, 0.0]; 5], &cfg, &mut quiet()),
            Err(ModelError::NonFiniteInput { index: 0, .. })
        ));
        assert!(matches!(
            Autoencoder::fit(&[[1e300, 0.0, 0.0]; 5], &cfg, &mut quiet()),
            Err(ModelError::NonFiniteInput { .. })
        ));
        let zero_batch = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        assert!(matches!(
            Autoencoder::fit(&[[0.0; 3]; 5], &zero_batch, &mut quiet()),
            Err(ModelError::InvalidConfig(_))
        ));
    }

    #[test]
    fn reconstruction_error_is_f64_mean_of_f32_prediction() {
        let m = Autoencoder::new(3);
        let v = [0.01, 2.5, 0.3];
        let y = m.reconstruct(&v);
        let expect = ((y[0] as f64 - v[0]).powi(2)
            + (y[1] as f64 - v[1]).powi(2)
            + (y[2] as f64 - v[2]).powi(2))
            / 3.0;
        assert_eq!(m.reconstruction_error(&v).to_bits(), expect.to_bits());
        assert!(y.iter().all(|c| *c > 0.0 && *c < 1.0));
    }

    #[test]
    fn safetensors_round_trip() {
        let data = vectors(60, 1);
        let cfg = TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        };
        let (m, _) = Autoencoder::fit(&data, &cfg, &mut quiet()).unwrap();
        let bytes = m.to_safetensors();
        let back = Autoencoder::from_safetensors(&bytes).unwrap();
        assert_eq!(m, back);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), 10);
        assert_eq!(st.tensor("dense_0.kernel").unwrap().shape(), &[3, 2]);
        assert_eq!(st.tensor("dense_4.bias").unwrap().shape(), &[3]);
    }

    fn write(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views = tensors
            .iter()
            .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()));
        safetensors::serialize(views, &None).unwrap()
    }

    fn good_tensors() -> Vec<(&'static str, Dtype, Vec<usize>, Vec<u8>)> {
        let names = [
            "dense_0.kernel",
            "dense_0.bias",
            "dense_1.kernel",
            "dense_1.bias",
            "dense_2.kernel",
            "dense_2.bias",
            "dense_3.kernel",
            "dense_3.bias",
            "dense_4.kernel",
            "dense_4.bias",
        ];
        let mut out = Vec::new();
        for (l, &(ni, no)) in LAYERS.iter().enumerate() {
            let k: Vec<u8> = (0..ni * no)
                .flat_map(|i| (i as f32 * 0.1).to_le_bytes())
                .collect();
            let b: Vec<u8> = (0..no).flat_map(|_| 0.5f32.to_le_bytes()).collect();
            out.push((names[2 * l], Dtype::F32, vec![ni, no], k));
            out.push((names[2 * l + 1], Dtype::F32, vec![no], b));
        }
        out
    }

    #[test]
    fn from_safetensors_rejects_bad_files() {
        assert!(Autoencoder::from_safetensors(&write(&good_tensors())).is_ok());
        // Garbage, truncated, empty.
        for junk in [
            &b""[..],
            &b"garbage bytes that are not a model"[..],
            &[0xff; 64][..],
            &[8, 0, 0, 0, 0, 0, 0, 0, b'{', b'}'][..],
        ] {
            assert!(matches!(
                Autoencoder::from_safetensors(junk),
                Err(ModelError::Safetensors(_))
            ));
        }
        let good = write(&good_tensors());
        assert!(Autoencoder::from_safetensors(&good[..good.len() - 1]).is_err());

        let mut missing = good_tensors();
        missing.remove(3);
        let e = Autoencoder::from_safetensors(&write(&missing)).unwrap_err();
        assert!(
            matches!(&e, ModelError::MissingTensor(n) if n == "dense_1.bias"),
            "{e}"
        );

        let mut extra = good_tensors();
        extra.push((
            "dense_5.bias",
            Dtype::F32,
            vec![1],
            1.0f32.to_le_bytes().to_vec(),
        ));
        let e = Autoencoder::from_safetensors(&write(&extra)).unwrap_err();
        assert!(
            matches!(&e, ModelError::UnexpectedTensor(n) if n == "dense_5.bias"),
            "{e}"
        );

        let mut shape = good_tensors();
        shape[0].2 = vec![2, 3];
        let e = Autoencoder::from_safetensors(&write(&shape)).unwrap_err();
        assert!(matches!(e, ModelError::WrongShape { .. }), "{e}");

        let mut dtype = good_tensors();
        dtype[1] = ("dense_0.bias", Dtype::F64, vec![2], vec![0; 16]);
        let e = Autoencoder::from_safetensors(&write(&dtype)).unwrap_err();
        assert!(matches!(e, ModelError::WrongDtype { .. }), "{e}");

        let mut nan = good_tensors();
        nan[8].3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = Autoencoder::from_safetensors(&write(&nan)).unwrap_err();
        assert!(
            matches!(&e, ModelError::NonFiniteWeight { name, index: 1, .. } if name == "dense_4.kernel"),
            "{e}"
        );
        assert!(e.to_string().contains("dense_4.kernel"));
    }

    #[test]
    fn from_layers_checks_shapes() {
        let ok: Vec<(Vec<Vec<f32>>, Vec<f32>)> = LAYERS
            .iter()
            .map(|&(ni, no)| (vec![vec![0.1; no]; ni], vec![0.0; no]))
            .collect();
        let m = Autoencoder::from_layers(&ok).unwrap();
        assert_eq!(m.params[PARAM_OFF[4]], 0.1);
        assert!(Autoencoder::from_layers(&ok[..4]).is_err());
        let mut bad = ok.clone();
        bad[2].0 = vec![vec![0.1; 2]];
        assert!(matches!(
            Autoencoder::from_layers(&bad),
            Err(ModelError::BadLayer { layer: 2, .. })
        ));
        let mut nan = ok;
        nan[1].1[0] = f32::INFINITY;
        assert!(Autoencoder::from_layers(&nan).is_err());
    }

    #[test]
    fn default_thetas_match_numpy_bits() {
        let expect: [f64; 10] = [
            0.2,
            0.4,
            0.6000000000000001,
            0.8,
            1.0,
            1.2,
            1.4000000000000001,
            1.6,
            1.8,
            2.0,
        ];
        let got = default_thetas();
        assert_eq!(got.len(), expect.len());
        for (g, e) in got.iter().zip(expect) {
            assert_eq!(g.to_bits(), e.to_bits(), "{g} vs {e}");
        }
        assert_eq!(
            thresholds(0.5, &got)[2].to_bits(),
            (0.5 * 0.6000000000000001f64).to_bits()
        );
        assert!(numpy_arange(1.0, 1.0, 0.2).is_empty());
    }
}
