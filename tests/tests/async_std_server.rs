//! The server behaviour suite (`tether_tests::server_suite`) against tether-async-std on
//! async-std's executor.

#[path = "../../runtimes/async-std/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;
#[path = "drivers/futures_io.rs"]
mod driver;

fn start(
    config: tether_async_std::ServerConfig,
) -> Box<dyn tether_tests::server_suite::DemoServer> {
    driver::start_demo(&driver::ASYNC_STD, config)
}

tether_tests::server_suite!(start);
