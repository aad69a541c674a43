//! TODO: quota
