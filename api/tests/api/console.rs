//! The console's reads (`/v1/admin/console/{roads,hexes,board}`): what
//! the board, the census and the road map say about a small city, the
//! alerts as time passes on a manual clock, and refusals of bad input.

use auth::Role;
use serde_json::Value;

use crate::common::*;

const T0: i64 = 1_763_700_000_000;

fn orders_of(board: &Value) -> Vec<&Value> {
    board["orders"].as_array().unwrap().iter().collect()
}

dual_test! {
    async fn the_board_lists_open_orders_with_their_courier_and_counters() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let courier = app.user(Role::Driver).await;
        app.ping(courier.driver_id(), HERE.0, HERE.1);
        let before = app.get("/v1/admin/console/board", admin.token()).await;
        let before = before.assert_ok(200).clone();
        assert!(orders_of(&before).is_empty());
        assert_eq!(before["counters"]["drivers_available"], 1);
        assert_eq!(before["counters"]["open_orders"], 0);

        let order = app.place_order(&customer, restaurant).await;
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        let board = board.assert_ok(200);
        let orders = orders_of(board);
        assert_eq!(orders.len(), 1, "{board}");
        let o = orders[0];
        assert_eq!(o["order_id"], order.to_string());
        assert_eq!(o["status"], "accepted");
        assert_eq!(o["driver_id"], Value::Null);
        assert_eq!(o["dispatch"]["offered"], true, "{o}");
        assert_eq!(o["pickup"]["lat"], HERE.0);
        assert_eq!(board["counters"]["open_orders"], 1);
        let opened = |b: &Value| b["counters"]["orders_opened_total"].as_u64().unwrap();
        assert_eq!(opened(board) - opened(&before), 1);

        let offer = app.offer_of(order);
        app.accept(&courier, &offer).await.assert_ok(200);
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        let o = orders_of(board.assert_ok(200))[0].clone();
        assert_eq!(o["driver_id"], courier.id.to_string());
        assert_eq!(o["driver_status"], "busy");
        assert!(o["eta_s"].is_u64(), "{o}");
        assert_eq!(o["dispatch"], Value::Null);
        assert_eq!(board.body["counters"]["drivers_busy"], 1);
        assert!(board.body["alerts"].as_array().unwrap().is_empty());
    }
}

dual_test! {
    async fn alerts_tell_of_orders_waiting_and_couriers_gone_offline() {
        let clock = clock::ManualClock::new(T0);
        let app = TestApp::with_clock(clock.clone()).await;
        let admin = app.admin().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        // Nobody to offer it to: it searches.
        let waiting = app.place_order(&customer, restaurant).await;
        let alerts = |b: &Value| b["alerts"].as_array().unwrap().clone();
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        assert!(alerts(board.assert_ok(200)).is_empty());

        clock.advance(121_000);
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        let list = alerts(board.assert_ok(200));
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["kind"], "order_waiting");
        assert_eq!(list[0]["order_id"], waiting.to_string());

        // A courier takes another order, then stops pinging.
        let courier = app.user(Role::Driver).await;
        app.ping(courier.driver_id(), HERE.0, HERE.1);
        let carried = app.place_order(&customer, restaurant).await;
        let offer = app
            .state
            .matcher
            .pending_offer(carried)
            .or_else(|| app.state.matcher.pending_offer(waiting))
            .expect("an offer to the courier");
        app.accept(&courier, &offer).await.assert_ok(200);
        let gone = clock.advance(200_000);
        app.state.engine.expire(gone);
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        let list = alerts(board.assert_ok(200));
        let offline: Vec<&Value> = list.iter().filter(|a| a["kind"] == "courier_offline").collect();
        assert_eq!(offline.len(), 1, "{list:?}");
        assert_eq!(offline[0]["driver_id"], courier.id.to_string());
        assert_eq!(offline[0]["order_id"], offer.order_id.to_string());
    }
}

dual_test! {
    async fn hexes_count_free_couriers_and_waiting_orders() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        app.place_order(&customer, restaurant).await;
        let courier = app.user(Role::Driver).await;
        // Far from the restaurant: counted, not offered it.
        app.ping(courier.driver_id(), HERE.0 + 0.2, HERE.1);
        for resolution in 5..=9 {
            let r = app
                .get(&format!("/v1/admin/console/hexes?resolution={resolution}"), admin.token())
                .await;
            let map = r.assert_ok(200);
            assert_eq!(map["resolution"], resolution);
            let cells = map["cells"].as_array().unwrap();
            let total = |k: &str| cells.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
            assert_eq!((total("supply"), total("demand")), (1, 1), "{map}");
            for c in cells {
                assert!(c["outline"].as_array().unwrap().len() >= 5, "{c}");
                assert_eq!(c["cell"].as_str().unwrap().len(), 15, "{c}");
            }
        }
        let default = app.get("/v1/admin/console/hexes", admin.token()).await;
        assert_eq!(default.assert_ok(200)["resolution"], 7);
    }
}

dual_test! {
    async fn bad_console_queries_are_refused() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        for (query, code) in [
            ("resolution=4", "invalid_resolution"),
            ("resolution=10", "invalid_resolution"),
            ("resolution=0", "invalid_resolution"),
            ("resolution=seven", "invalid_query"),
            ("resolution=-1", "invalid_query"),
        ] {
            let r = app.get(&format!("/v1/admin/console/hexes?{query}"), admin.token()).await;
            r.assert_error(400, code);
        }
    }
}

dual_test! {
    async fn without_a_road_graph_the_road_map_is_empty() {
        let app = TestApp::new().await;
        let admin = app.admin().await;
        let r = app.get("/v1/admin/console/roads", admin.token()).await;
        let map = r.assert_ok(200);
        assert_eq!(map["bbox"], Value::Null);
        assert_eq!(map["nodes"], serde_json::json!([]));
        assert_eq!(map["scale"], 100_000);
    }
}

dual_test! {
    async fn the_waiting_alert_comes_after_the_configured_time() {
        let clock = clock::ManualClock::new(T0);
        let config = api::Config {
            console_waiting_alert_s: 30,
            ..test_config()
        };
        let app = TestApp::with_clock_and_config(clock.clone(), config).await;
        let admin = app.admin().await;
        let owner = app.user(Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let customer = app.user(Role::Customer).await;
        let waiting = app.place_order(&customer, restaurant).await;
        let alerts = |b: &Value| b["alerts"].as_array().unwrap().clone();

        clock.advance(29_000);
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        assert!(alerts(board.assert_ok(200)).is_empty(), "not yet");
        clock.advance(2_000);
        let board = app.get("/v1/admin/console/board", admin.token()).await;
        let list = alerts(board.assert_ok(200));
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["order_id"], waiting.to_string());
        // Its age counts from its placement, whatever its status since.
        let o = orders_of(&board.body)[0].clone();
        assert_eq!(o["placed_at_ms"], T0, "{o}");
        assert_eq!(board.body["at_ms"], T0 + 31_000);
    }
}
