//! Connects a WebSocket, sends each line of stdin as a text message, prints what comes back.
//! At the end of input it prints the replies still coming (until half a second of quiet),
//! then closes with 1000.
//!
//! ```text
//! cargo run -p tether-tokio --example ws_client -- ws://127.0.0.1:8080/ws
//! ```

use tether_tokio::websocket::Message;
use tether_tokio::Client;
use tokio::io::AsyncBufReadExt;

#[tokio::main]
async fn main() {
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
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut input_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if input_open => match line {
                Ok(Some(line)) => {
                    if let Err(e) = socket.send_text(line).await {
                        eprintln!("send failed: {e}");
                        break;
                    }
                }
                _ => {
                    // End of input: print the replies still coming (until the server has
                    // been quiet for half a second), then close.
                    input_open = false;
                    loop {
                        let quiet = std::time::Duration::from_millis(500);
                        match tokio::time::timeout(quiet, socket.recv()).await {
                            Ok(Some(Message::Text(text))) => println!("{text}"),
                            Ok(Some(Message::Binary(data))) => println!("<{} bytes>", data.len()),
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => break,
                        }
                    }
                    let _ = socket.close(1000, "bye").await;
                }
            },
            message = socket.recv() => match message {
                Some(Message::Text(text)) => println!("{text}"),
                Some(Message::Binary(data)) => println!("<{} bytes>", data.len()),
                Some(_) => {}
                None => break,
            },
        }
    }
    eprintln!("closed: {:?}", socket.close_reason());
}
