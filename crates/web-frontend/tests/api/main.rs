//! The web-frontend's HTTP API, every row of the contract's web table, against
//! a real server on an ephemeral port.

mod fake_socket_api;
mod helpers;
mod login;
mod notices;
mod pages;
mod throttle;
mod token;
