//! The web-frontend's HTTP API, every row of the contract's web table, against
//! a real server on an ephemeral port.

mod helpers;
mod login;
mod pages;
mod throttle;
mod token;
