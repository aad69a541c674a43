//! TODO: fifo
