//! TODO: presign
