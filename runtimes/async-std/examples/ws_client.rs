//! Connects a WebSocket, sends each line of stdin as a text message, prints what comes back.
//! At the end of input it prints the replies still coming (until half a second of quiet),
//! then closes with 1000.
//!
//! ```text
//! cargo run -p tether-async-std --example async_std_ws_client -- ws://127.0.0.1:8080/ws
//! ```

use async_std::io::prelude::BufReadExt;
use futures_util::future::{select, Either};
use futures_util::{FutureExt, StreamExt};
use std::pin::pin;
use std::time::Duration;
use tether_async_std::websocket::Message;
use tether_async_std::Client;

/// What woke the loop: a line of input (or its end), or a message (or the socket's end).
enum Event {
    Line(Option<std::io::Result<String>>),
    Message(Option<Message>),
}

fn main() {
    async_std::task::block_on(run());
}

async fn run() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: ws_client ws://HOST:PORT/PATH");
        std::process::exit(2);
    };
    let client = Client::default();
    let (mut socket, protocol) = match client.ws_connect(&url, &["echo"]).await {
        Ok(connected) => connected,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("connected (subprotocol: {protocol:?}); type lines, Ctrl-D to close");
    let mut lines = async_std::io::BufReader::new(async_std::io::stdin()).lines();
    let mut input_open = true;
    loop {
        let event = {
            let message = socket.recv().map(Event::Message);
            if input_open {
                let line = lines.next().map(Event::Line);
                match select(pin!(line), pin!(message)).await {
                    Either::Left((event, _)) | Either::Right((event, _)) => event,
                }
            } else {
                message.await
            }
        };
        match event {
            Event::Line(Some(Ok(line))) => {
                if let Err(e) = socket.send_text(line).await {
                    eprintln!("send failed: {e}");
                    break;
                }
            }
            Event::Line(_) => {
                // End of input: print the replies still coming (until the server has been
                // quiet for half a second), then close.
                input_open = false;
                let quiet = Duration::from_millis(500);
                while let Ok(Some(message)) = async_std::future::timeout(quiet, socket.recv()).await
                {
                    match message {
                        Message::Text(text) => println!("{text}"),
                        Message::Binary(data) => println!("<{} bytes>", data.len()),
                        _ => {}
                    }
                }
                let _ = socket.close(1000, "bye").await;
            }
            Event::Message(Some(Message::Text(text))) => println!("{text}"),
            Event::Message(Some(Message::Binary(data))) => println!("<{} bytes>", data.len()),
            Event::Message(Some(_)) => {}
            Event::Message(None) => break,
        }
    }
    eprintln!("closed: {:?}", socket.close_reason());
}
