//! TODO: key
