//! Following redirects: which request a redirect leads to, and when to stop. The policy
//! is the one browsers and reqwest follow, with one rule more for secrets: `303` (and
//! `301`/`302` after a `POST`) become a `GET` without a body, and neither credentials
//! (`Authorization`, `Cookie`, `Proxy-Authorization`) nor values taken from the
//! environment go to another origin. What fetches each request is the caller's (the
//! HTTP probe has a way of its own for plain HTTP), so this module does no I/O.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

/// The headers that carry credentials, which stay in their origin.
pub const CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// How many redirects a request follows at most.
pub const MAX_REDIRECTS: usize = 10;

/// One request: where, how, with what.
#[derive(Clone, Debug)]
pub struct Request {
    pub url: Url,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Option<Payload>,
}

/// A request body and its `Content-Type`.
#[derive(Clone, Debug)]
pub struct Payload {
    pub content_type: HeaderValue,
    pub bytes: Bytes,
}

impl Payload {
    /// `value` as JSON.
    pub fn json(value: &impl serde::Serialize) -> Result<Payload, serde_json::Error> {
        Ok(Payload {
            content_type: HeaderValue::from_static("application/json"),
            bytes: serde_json::to_vec(value)?.into(),
        })
    }
}

impl Request {
    /// The request a redirect with `status` to `location` leads to; `None` if
    /// `location` is not an `http` or `https` URL.
    pub fn redirected(&self, status: StatusCode, location: &HeaderValue) -> Option<Request> {
        let url = self.url.join(location.to_str().ok()?).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let method = match status.as_u16() {
            303 if self.method != Method::HEAD => Method::GET,
            301 | 302 if self.method == Method::POST => Method::GET,
            _ => self.method.clone(),
        };
        let headers = if url.origin() == self.url.origin() {
            self.headers.clone()
        } else {
            (self.headers.iter())
                .filter(|(name, value)| !value.is_sensitive() && !CREDENTIALS.contains(name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect()
        };
        // A request turned into a `GET` leaves its body behind; `307` and `308` keep it.
        let body = self.body.clone().filter(|_| method == self.method);
        Some(Request {
            url,
            method,
            headers,
            body,
        })
    }
}

/// A request and the redirects it leads to, followed or not.
pub struct Redirects {
    request: Request,
    follow: bool,
    followed: usize,
}

/// What to do after a response.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Fetch [`Redirects::request`], the redirect's target.
    Follow,
    /// The response is the answer: not a redirect that is followed, or one whose
    /// `Location` is not a URL to go to.
    Answer,
    /// A redirect past [`MAX_REDIRECTS`].
    TooMany,
}

impl Redirects {
    /// Starts at `request`; `follow: false` takes every response as the answer.
    pub fn new(request: Request, follow: bool) -> Redirects {
        Redirects {
            request,
            follow,
            followed: 0,
        }
    }

    /// The request to fetch now.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Whether redirects are followed (then a redirect's body need not be read).
    pub fn follows(&self) -> bool {
        self.follow
    }

    /// How many redirects were followed to get to [`Redirects::request`].
    pub fn followed(&self) -> usize {
        self.followed
    }

    /// Moves on after a response with `status` whose followed location (see
    /// [`super::followed_location`]) is `location`.
    pub fn step(&mut self, status: StatusCode, location: Option<&HeaderValue>) -> Step {
        let Some(location) = location.filter(|_| self.follow) else {
            return Step::Answer;
        };
        if self.followed == MAX_REDIRECTS {
            return Step::TooMany;
        }
        match self.request.redirected(status, location) {
            Some(next) => {
                self.request = next;
                self.followed += 1;
                Step::Follow
            }
            None => Step::Answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, method: Method) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        headers.insert("x-trace", HeaderValue::from_static("plain"));
        let mut secret = HeaderValue::from_static("from the environment");
        secret.set_sensitive(true);
        headers.insert("x-api-key", secret);
        Request {
            url: url.parse().unwrap(),
            method,
            headers,
            body: Some(Payload::json(&"body").unwrap()),
        }
    }

    fn names(request: &Request) -> Vec<&str> {
        let mut names: Vec<&str> = request.headers.keys().map(|k| k.as_str()).collect();
        names.sort();
        names
    }

    #[test]
    fn credentials_and_secrets_stay_in_their_origin() {
        let first = request("http://a.example:8080/x", Method::GET);
        let found = StatusCode::FOUND;
        let home = first
            .redirected(found, &HeaderValue::from_static("/y?z"))
            .unwrap();
        assert_eq!(home.url.as_str(), "http://a.example:8080/y?z");
        assert_eq!(names(&home), ["authorization", "x-api-key", "x-trace"]);
        // Another port, another scheme, another host: each is another origin.
        for away in [
            "http://a.example:8081/",
            "https://a.example:8080/",
            "http://b.example:8080/",
        ] {
            let next = first
                .redirected(found, &HeaderValue::from_str(away).unwrap())
                .unwrap();
            assert_eq!(names(&next), ["x-trace"], "{away}");
        }
    }

    #[test]
    fn a_post_becomes_a_get_without_its_body_as_browsers_do() {
        let post = request("http://a.example/", Method::POST);
        let to = HeaderValue::from_static("/next");
        let method_and_body = |status: u16| {
            let next = post
                .redirected(StatusCode::from_u16(status).unwrap(), &to)
                .unwrap();
            (next.method, next.body.is_some())
        };
        assert_eq!(method_and_body(301), (Method::GET, false));
        assert_eq!(method_and_body(302), (Method::GET, false));
        assert_eq!(method_and_body(303), (Method::GET, false));
        assert_eq!(method_and_body(307), (Method::POST, true));
        assert_eq!(method_and_body(308), (Method::POST, true));
        let head = request("http://a.example/", Method::HEAD);
        let next = head.redirected(StatusCode::SEE_OTHER, &to).unwrap();
        assert_eq!(next.method, Method::HEAD);
    }

    #[test]
    fn a_chain_stops_at_an_answer_a_bad_location_or_too_many_redirects() {
        let found = StatusCode::FOUND;
        let to = HeaderValue::from_static("/again");
        let mut chain = Redirects::new(request("http://a.example/", Method::GET), true);
        assert_eq!(chain.step(StatusCode::OK, None), Step::Answer);
        for _ in 0..MAX_REDIRECTS {
            assert_eq!(chain.step(found, Some(&to)), Step::Follow);
        }
        assert_eq!(chain.followed(), MAX_REDIRECTS);
        assert_eq!(chain.step(found, Some(&to)), Step::TooMany);

        let mut chain = Redirects::new(request("http://a.example/", Method::GET), true);
        let ftp = HeaderValue::from_static("ftp://a.example/");
        assert_eq!(chain.step(found, Some(&ftp)), Step::Answer);
        let mut kept = Redirects::new(request("http://a.example/", Method::GET), false);
        assert_eq!(kept.step(found, Some(&to)), Step::Answer);
        assert_eq!(kept.request().url.path(), "/");
    }
}
