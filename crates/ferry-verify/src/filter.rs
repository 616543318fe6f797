//! Row filters of comparison tasks (`Tables[].FilterCondition`): the same parser and checks as a
//! job's `Ferry.DbList` filters ([`ferry_core::filter`]), so both accept and refuse the same texts.

pub use ferry_core::filter::*;
