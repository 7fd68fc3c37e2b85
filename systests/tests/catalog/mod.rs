//! One module per stand-in image.
mod postgresql;
mod python;
