//! How a connection proves itself and hides its traffic: TLS (with the authorities trusted) and
//! SASL — PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka's
//! `security.protocol` SSL, SASL_PLAINTEXT and SASL_SSL name them.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::Rng;
use ring::{digest, hmac, pbkdf2};

use crate::tls::TlsOptions;

/// How connections to the brokers are secured; the default is neither TLS nor SASL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// TLS, when the brokers' listener speaks it.
    pub tls: Option<TlsOptions>,
    /// SASL, when the brokers ask for it.
    pub sasl: Option<Sasl>,
}

/// A SASL login.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl").field("mechanism", &self.mechanism).field("username", &self.username).finish()
    }
}

/// The SASL mechanisms served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// The user and password in clear (over TLS only, in practice).
    Plain,
    /// SCRAM with SHA-256.
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl Mechanism {
    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// One side of a SASL exchange: the next message to send, given the broker's last one.
pub(super) enum Exchange {
    Plain { sent: bool, message: Vec<u8> },
    Scram(Scram),
}

impl Exchange {
    pub(super) fn new(sasl: &Sasl) -> Exchange {
        match sasl.mechanism {
            Mechanism::Plain => {
                let message = format!("\0{}\0{}", sasl.username, sasl.password).into_bytes();
                Exchange::Plain { sent: false, message }
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => Exchange::Scram(Scram::new(sasl)),
        }
    }

    /// What to send after `received` (nothing before the first message); `None` once the
    /// exchange is over, or why the broker's answer is not acceptable.
    pub(super) fn step(&mut self, received: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        match self {
            Exchange::Plain { sent, message } => {
                if *sent {
                    return Ok(None);
                }
                *sent = true;
                Ok(Some(std::mem::take(message)))
            }
            Exchange::Scram(scram) => scram.step(received),
        }
    }
}

/// The client side of SCRAM: client-first, client-final, then the server's signature checked.
pub(super) struct Scram {
    sha512: bool,
    username: String,
    password: String,
    nonce: String,
    state: ScramState,
}

enum ScramState {
    Start,
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

impl Scram {
    fn new(sasl: &Sasl) -> Scram {
        let bytes: [u8; 24] = rand::rng().random();
        Scram::with_nonce(sasl, BASE64.encode(bytes))
    }

    fn with_nonce(sasl: &Sasl, nonce: String) -> Scram {
        Scram {
            sha512: sasl.mechanism == Mechanism::ScramSha512,
            username: sasl.username.replace('=', "=3D").replace(',', "=2C"),
            password: sasl.password.clone(),
            nonce,
            state: ScramState::Start,
        }
    }

    fn first_bare(&self) -> String {
        format!("n={},r={}", self.username, self.nonce)
    }

    fn step(&mut self, received: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        match std::mem::replace(&mut self.state, ScramState::Done) {
            ScramState::Start => {
                self.state = ScramState::SentFirst;
                Ok(Some(format!("n,,{}", self.first_bare()).into_bytes()))
            }
            ScramState::SentFirst => {
                let server_first = std::str::from_utf8(received.unwrap_or_default())
                    .map_err(|_| "the server's first SCRAM message is not UTF-8".to_owned())?;
                let field =
                    |name: &str| server_first.split(',').find_map(|part| part.strip_prefix(name)).map(str::to_owned);
                let nonce = field("r=").ok_or("the server's first SCRAM message has no nonce")?;
                if !nonce.starts_with(&self.nonce) {
                    return Err("the server's SCRAM nonce does not extend the client's".into());
                }
                let salt = BASE64
                    .decode(field("s=").ok_or("the server's first SCRAM message has no salt")?)
                    .map_err(|_| "the server's SCRAM salt is not base64".to_owned())?;
                let iterations: u32 = field("i=")
                    .and_then(|i| i.parse().ok())
                    .ok_or("the server's first SCRAM message has no iteration count")?;
                let iterations = NonZeroU32::new(iterations).ok_or("a SCRAM iteration count of 0")?;
                let (algorithm, hmac_algorithm, digest_algorithm, length) = if self.sha512 {
                    (pbkdf2::PBKDF2_HMAC_SHA512, hmac::HMAC_SHA512, &digest::SHA512, 64)
                } else {
                    (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256, 32)
                };
                let mut salted = vec![0u8; length];
                pbkdf2::derive(algorithm, iterations, &salt, self.password.as_bytes(), &mut salted);
                let salted = hmac::Key::new(hmac_algorithm, &salted);
                let client_key = hmac::sign(&salted, b"Client Key");
                let stored_key = digest::digest(digest_algorithm, client_key.as_ref());
                let without_proof = format!("c=biws,r={nonce}");
                let auth_message = format!("{},{server_first},{without_proof}", self.first_bare());
                let signature =
                    hmac::sign(&hmac::Key::new(hmac_algorithm, stored_key.as_ref()), auth_message.as_bytes());
                let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
                let server_key = hmac::sign(&salted, b"Server Key");
                let server_signature =
                    hmac::sign(&hmac::Key::new(hmac_algorithm, server_key.as_ref()), auth_message.as_bytes());
                self.state = ScramState::SentFinal { server_signature: server_signature.as_ref().to_vec() };
                Ok(Some(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes()))
            }
            ScramState::SentFinal { server_signature } => {
                let server_final = std::str::from_utf8(received.unwrap_or_default()).unwrap_or_default();
                if let Some(error) = server_final.strip_prefix("e=") {
                    return Err(format!("the server refused the login: {error}"));
                }
                let verifier = server_final
                    .split(',')
                    .find_map(|part| part.strip_prefix("v="))
                    .and_then(|v| BASE64.decode(v).ok())
                    .ok_or("the server's final SCRAM message has no signature")?;
                if verifier != server_signature {
                    return Err("the server's SCRAM signature is wrong: it does not know the password".into());
                }
                Ok(None)
            }
            ScramState::Done => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example of SCRAM-SHA-256, step by step.
    #[test]
    fn scram_sha_256_follows_rfc_7677() {
        let sasl = Sasl { mechanism: Mechanism::ScramSha256, username: "user".into(), password: "pencil".into() };
        let mut scram = Scram::with_nonce(&sasl, "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(scram.step(None).unwrap().unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = scram.step(Some(server_first)).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(scram.step(Some(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")).unwrap(), None);
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let sasl = Sasl { mechanism: Mechanism::ScramSha256, username: "user".into(), password: "pencil".into() };
        let mut scram = Scram::with_nonce(&sasl, "rOprNGfwEbeRWgbNEkqO".into());
        scram.step(None).unwrap();
        scram.step(Some(b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")).unwrap();
        assert!(scram.step(Some(b"v=AAAA")).unwrap_err().contains("does not know the password"));
        let mut other = Scram::with_nonce(&sasl, "abc".into());
        other.step(None).unwrap();
        assert!(other.step(Some(b"r=zzz,s=AA==,i=1")).unwrap_err().contains("nonce"));
    }

    #[test]
    fn plain_sends_the_user_and_password_once_and_names_are_escaped() {
        let sasl = Sasl { mechanism: Mechanism::Plain, username: "u".into(), password: "p".into() };
        let mut plain = Exchange::new(&sasl);
        assert_eq!(plain.step(None).unwrap().unwrap(), b"\0u\0p");
        assert_eq!(plain.step(Some(b"")).unwrap(), None);
        let odd = Sasl { mechanism: Mechanism::ScramSha512, username: "a=b,c".into(), password: "p".into() };
        assert_eq!(Scram::with_nonce(&odd, "n".into()).first_bare(), "n=a=3Db=2Cc,r=n");
        assert!(!format!("{odd:?}").contains("password"));
    }
}
