//! listing (todo)
