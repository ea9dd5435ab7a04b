//! `loadgen`: parses the command line, runs one scenario, prints its report.

mod cli;

use std::process::ExitCode;

use loadgen::Report;

/// Exit status of a run that finished but counted errors (mismatches, failed
/// connections or requests): the report is printed all the same.
const EXIT_ERRORS_COUNTED: u8 = 3;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Parsed::Help) => {
            write_line(cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(command)) => command,
        Err(error) => {
            eprintln!("loadgen: {error}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    // Every held connection is a descriptor.
    if let Err(error) = loadgen::process::raise_open_files_limit() {
        eprintln!("loadgen: cannot raise the open-files limit: {error}");
    }
    let runtime = if command.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(command.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command.scenario.run()) {
        Ok(report) => {
            print_report(&report, command.json);
            if report.errors() > 0 {
                ExitCode::from(EXIT_ERRORS_COUNTED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(report: &Report, json: bool) {
    if json {
        match serde_json::to_string(report) {
            Ok(line) => write_line(&line),
            Err(error) => eprintln!("loadgen: cannot write the report: {error}"),
        }
    } else {
        write_line(&report.summary());
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the report is this program's output, for people and scripts"
)]
fn write_line(text: &str) {
    println!("{text}");
}
