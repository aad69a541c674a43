//! TODO: scrub
