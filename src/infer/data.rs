//! The image data a network is measured on: an MNIST-style split (IDX files, gzipped or not,
//! as Debian's `dataset-fashion-mnist` ships them) read into float images `pixel / 255` and
//! labels, as `tools/accuracy/fmnist.py` reads them.

use crate::spec::InputError;
use std::path::{Path, PathBuf};

/// Which split of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// `train-images-idx3-ubyte` / `train-labels-idx1-ubyte` (calibration).
    Train,
    /// `t10k-images-idx3-ubyte` / `t10k-labels-idx1-ubyte` (measurement).
    Test,
}

impl Split {
    /// The (images, labels) file stems.
    fn stems(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }
}

/// Images (float32, `pixel / 255`, one `rows x cols` plane each, in file order) and labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) images: Vec<f32>,
    pub(crate) labels: Vec<u8>,
    /// Values per image (rows x cols).
    pub(crate) pixels: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

impl Dataset {
    /// Reads `split` from `dir` (`<stem>.gz` or `<stem>`), the first `limit` images when given.
    pub fn load(dir: &Path, split: Split, limit: Option<usize>) -> Result<Dataset, InputError> {
        let (img_stem, lab_stem) = split.stems();
        let (img_path, img_dims, img) = read_idx(&find_file(dir, img_stem)?, limit)?;
        let (lab_path, lab_dims, labels) = read_idx(&find_file(dir, lab_stem)?, limit)?;
        if img_dims.len() != 3 || lab_dims.len() != 1 || img_dims[0] != lab_dims[0] {
            let why = format!("images {img_dims:?} and labels {lab_dims:?} do not match");
            return Err(InputError::new(&img_path, "(header)", why));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
            return Err(InputError::new(
                &lab_path,
                "(data)",
                format!("label {bad} > 9"),
            ));
        }
        let n = limit.map_or(img_dims[0], |l| l.min(img_dims[0]));
        let pixels = img_dims[1] * img_dims[2];
        let images = img[..n * pixels]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        Ok(Dataset {
            images,
            labels: labels[..n].to_vec(),
            pixels,
            rows: img_dims[1],
            cols: img_dims[2],
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Drops the first `k` images (a held-out part of a split starts after them).
    pub fn skip(&mut self, k: usize) {
        let k = k.min(self.len());
        self.images.drain(..k * self.pixels);
        self.labels.drain(..k);
    }

    /// Images `range` as one contiguous slice (image after image).
    pub(crate) fn images(&self, range: std::ops::Range<usize>) -> &[f32] {
        &self.images[range.start * self.pixels..range.end * self.pixels]
    }
}

/// The IDX file `stem` in `dir`, gzipped (`.gz`) or not.
fn find_file(dir: &Path, stem: &str) -> Result<PathBuf, InputError> {
    if !dir.is_dir() {
        let why = "is not a directory (Fashion-MNIST: `apt-get install dataset-fashion-mnist`, \
                   then --data /usr/share/datasets/fashion-mnist)";
        return Err(InputError::new(dir, "--data", why));
    }
    [format!("{stem}.gz"), stem.to_string()]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| InputError::new(dir, "--data", format!("has no `{stem}(.gz)`")))
}

/// An unsigned-byte IDX file: (its path, dims from its header, the data of its first `limit`
/// items, all when None). Gzip is told by its magic bytes; only what is needed is decompressed.
fn read_idx(
    path: &Path,
    limit: Option<usize>,
) -> Result<(PathBuf, Vec<usize>, Vec<u8>), InputError> {
    use std::io::Read;
    let err = |field: &str, why: String| InputError::new(path, field, why);
    let file = std::fs::File::open(path).map_err(|e| err("(file)", format!("cannot read: {e}")))?;
    let mut file = std::io::BufReader::new(file);
    let magic = std::io::BufRead::fill_buf(&mut file).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    let mut r: Box<dyn Read> = if magic {
        Box::new(flate2::bufread::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let cut = |e: std::io::Error| {
        err(
            "(data)",
            format!("cannot read (cut short or not gzip?): {e}"),
        )
    };
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(cut)?;
    if head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] == 0 {
        return Err(err("(header)", "not an unsigned-byte IDX file".into()));
    }
    let mut dims_raw = vec![0u8; 4 * head[3] as usize];
    r.read_exact(&mut dims_raw).map_err(cut)?;
    let dims: Vec<usize> = (dims_raw.chunks_exact(4))
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let n = limit.map_or(dims[0], |l| l.min(dims[0]));
    let mut data = vec![0u8; n * dims[1..].iter().product::<usize>()];
    r.read_exact(&mut data).map_err(cut)?;
    Ok((path.to_path_buf(), dims, data))
}
