//! Admin listings (users, restaurants, orders) with optional filters and
//! keyset paging, newest first by `(created_at_ms, id)`.
//!
//! The statement is built from the filters that are set, each a fixed
//! condition with a placeholder (values are always bound, never spliced),
//! so a filter that is not set costs nothing and each listing can use its
//! index (`0011_admin_lists.sql`, the order indexes of `0001`).

use sqlx::any::AnyRow;

use super::SqlStore;
use super::rows::{self, select_order, select_restaurant, select_user};
use crate::store::{
    Order, OrderFilter, PageAfter, Restaurant, RestaurantFilter, Result, User, UserFilter,
};

/// A bound value.
enum Arg {
    Text(String),
    Int(i64),
}

/// A statement being built: the SQL so far and its bound values, in
/// placeholder order.
struct Statement {
    sql: String,
    args: Vec<Arg>,
}

impl Statement {
    /// `select` followed by `WHERE 1 = 1`, so every condition is an `AND`.
    fn new(select: &str) -> Self {
        Self {
            sql: format!("{select}WHERE 1 = 1"),
            args: Vec::new(),
        }
    }

    /// The next placeholder, bound to `arg`.
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// `AND column = value`.
    fn equals(&mut self, column: &str, arg: Arg) {
        let p = self.arg(arg);
        self.sql.push_str(&format!(" AND {column} = {p}"));
    }

    /// `AND (lower(a) LIKE p OR lower(b) LIKE p …)`: contains `text`,
    /// case-insensitive for ASCII on both backends (`LIKE` is
    /// case-sensitive on PostgreSQL), with `%`, `_` and `\` in the text
    /// matched literally.
    fn contains(&mut self, columns: &[&str], text: &str) {
        let mut escaped = String::with_capacity(text.len() + 2);
        escaped.push('%');
        for c in text.to_ascii_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped.push('%');
        let p = self.arg(Arg::Text(escaped));
        let alternatives: Vec<String> = columns
            .iter()
            .map(|c| format!("lower({c}) LIKE {p} ESCAPE '\\'"))
            .collect();
        self.sql
            .push_str(&format!(" AND ({})", alternatives.join(" OR ")));
    }

    /// The keyset page: strictly after `after` in newest-first order, then
    /// the order and the limit.
    fn page(&mut self, prefix: &str, after: Option<&PageAfter>, limit: u32) {
        if let Some(after) = after {
            let ms = self.arg(Arg::Int(after.created_at_ms));
            let id = self.arg(Arg::Text(after.id.clone()));
            self.sql.push_str(&format!(
                " AND ({prefix}created_at_ms < {ms} OR ({prefix}created_at_ms = {ms} AND {prefix}id < {id}))"
            ));
        }
        let limit = self.arg(Arg::Int(i64::from(limit)));
        self.sql.push_str(&format!(
            " ORDER BY {prefix}created_at_ms DESC, {prefix}id DESC LIMIT {limit}"
        ));
    }

    async fn fetch(self, store: &SqlStore) -> Result<Vec<AnyRow>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for arg in self.args {
            query = match arg {
                Arg::Text(s) => query.bind(s),
                Arg::Int(i) => query.bind(i),
            };
        }
        Ok(query.fetch_all(&store.pool).await?)
    }
}

/// [`crate::store::AccountStore::list_users`].
pub(super) async fn users(
    store: &SqlStore,
    filter: &UserFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Vec<User>> {
    let mut st = Statement::new(select_user!());
    if let Some(role) = filter.role {
        st.equals("role", Arg::Text(role.as_str().to_owned()));
    }
    match filter.banned {
        Some(true) => st.sql.push_str(" AND banned_at_ms IS NOT NULL"),
        Some(false) => st.sql.push_str(" AND banned_at_ms IS NULL"),
        None => {}
    }
    if let Some(text) = &filter.text {
        st.contains(&["name", "email"], text);
    }
    st.page("", after, limit);
    st.fetch(store).await?.iter().map(rows::user).collect()
}

/// [`crate::store::RestaurantStore::list_restaurants`].
pub(super) async fn restaurants(
    store: &SqlStore,
    filter: &RestaurantFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Vec<Restaurant>> {
    let mut st = Statement::new(select_restaurant!());
    if let Some(owner) = filter.owner_id {
        st.equals("owner_id", Arg::Text(owner.to_string()));
    }
    if let Some(accepting) = filter.accepting {
        st.equals("accepting_orders", Arg::Int(rows::flag(accepting)));
    }
    if let Some(text) = &filter.text {
        st.contains(&["name", "address"], text);
    }
    st.page("", after, limit);
    st.fetch(store)
        .await?
        .iter()
        .map(rows::restaurant)
        .collect()
}

/// [`crate::store::OrderStore::search_orders`].
pub(super) async fn orders(
    store: &SqlStore,
    filter: &OrderFilter,
    after: Option<&PageAfter>,
    limit: u32,
) -> Result<Vec<Order>> {
    let mut st = Statement::new(select_order!());
    if let Some(status) = filter.status {
        st.equals("o.status", Arg::Text(status.as_str().to_owned()));
    }
    if let Some(id) = filter.restaurant_id {
        st.equals("o.restaurant_id", Arg::Text(id.to_string()));
    }
    if let Some(id) = filter.driver_id {
        st.equals("o.driver_id", Arg::Text(id.to_string()));
    }
    if let Some(id) = filter.customer_id {
        st.equals("o.customer_id", Arg::Text(id.to_string()));
    }
    if let Some(from) = filter.from_ms {
        let p = st.arg(Arg::Int(from));
        st.sql.push_str(&format!(" AND o.created_at_ms >= {p}"));
    }
    if let Some(until) = filter.until_ms {
        let p = st.arg(Arg::Int(until));
        st.sql.push_str(&format!(" AND o.created_at_ms < {p}"));
    }
    st.page("o.", after, limit);
    st.fetch(store).await?.iter().map(rows::order).collect()
}
