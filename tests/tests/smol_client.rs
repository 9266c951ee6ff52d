//! The client behaviour suite (`tether_tests::client_suite`) against tether-async-std's
//! client on smol's executor (the demo server it talks to is the same adapter's).

#[path = "../../runtimes/async-std/examples/demo/app.rs"]
#[allow(dead_code)]
mod demo;
#[path = "drivers/futures_io.rs"]
mod driver;

use tether_tests::client_suite::ClientDriver;

fn demo_server(
    config: tether_async_std::ServerConfig,
) -> Box<dyn tether_tests::server_suite::DemoServer> {
    driver::start_demo(&driver::SMOL, config)
}

static DRIVER: ClientDriver = ClientDriver {
    client: |config| {
        tether_async_std::Client::with_spawner(
            config,
            tether_async_std::tls::TlsConfig::default(),
            tether_async_std::Spawner::smol(),
        )
        .into()
    },
    block_on: |body| smol::block_on(body),
    spawn: |task| smol::spawn(task).detach(),
    sleep: |duration| {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    },
    demo: demo_server,
};

tether_tests::client_suite!(DRIVER);
