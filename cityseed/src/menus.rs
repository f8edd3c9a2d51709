//! Seeded restaurants with menus: names, cuisines, dishes and opening hours
//! built from word lists, so search benchmarks (and load tests that create
//! restaurants through the api) see realistic-ish text and the same data
//! for the same seed.
//!
//! Plain data only: each consumer turns it into its own types (catalog
//! entries, api requests).

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::{City, Point};

/// The zone every generated schedule is written in.
pub const TIME_ZONE: &str = "Europe/Stockholm";

/// The same local hours every day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyHours {
    /// Local opening time, `"HH:MM"`.
    pub open: &'static str,
    /// Local closing time, `"HH:MM"` (at or before `open`: past midnight).
    pub close: &'static str,
}

/// One generated menu item.
#[derive(Clone, Debug)]
pub struct GenDish {
    /// Its id, from the seed.
    pub id: Uuid,
    /// A dish of the cuisine, sometimes with a modifier.
    pub name: String,
    /// The menu section.
    pub category: String,
    /// 39.00 to 299.00, whole units.
    pub price_cents: i64,
    /// One in twenty is unavailable.
    pub available: bool,
}

/// One generated restaurant with its menu.
#[derive(Clone, Debug)]
pub struct GenRestaurant {
    /// Its id, from the seed.
    pub id: Uuid,
    /// `first second` words of its cuisine, sometimes with a district.
    pub name: String,
    /// Where it is.
    pub location: Point,
    /// One cuisine, sometimes two.
    pub cuisines: Vec<String>,
    /// `None`: always open.
    pub hours: Option<DailyHours>,
    /// Mostly 2–6 km; one in twenty 10–15 km.
    pub delivery_radius_m: u32,
    /// Three in a hundred are paused.
    pub accepting_orders: bool,
    /// Its menu.
    pub dishes: Vec<GenDish>,
}

/// One cuisine's vocabulary.
struct Cuisine {
    name: &'static str,
    /// Restaurant names are `first second` (and sometimes a district).
    first: &'static [&'static str],
    second: &'static [&'static str],
    dishes: &'static [&'static str],
    modifiers: &'static [&'static str],
    categories: &'static [&'static str],
}

const CUISINES: &[Cuisine] = &[
    Cuisine {
        name: "Italian",
        first: &[
            "Pizzeria",
            "Trattoria",
            "Osteria",
            "Ristorante",
            "Pasta Bar",
        ],
        second: &[
            "Napoli", "Roma", "Bella", "Milano", "da Mario", "Toscana", "Venezia",
        ],
        dishes: &[
            "Pizza Margherita",
            "Pizza Capricciosa",
            "Pizza Diavola",
            "Quattro Formaggi",
            "Calzone",
            "Lasagne",
            "Spaghetti Carbonara",
            "Penne Arrabbiata",
            "Risotto",
            "Tiramisù",
            "Panna Cotta",
            "Bruschetta",
            "Gnocchi",
            "Vitello Tonnato",
        ],
        modifiers: &[
            "al Forno",
            "Speciale",
            "della Casa",
            "con Funghi",
            "Vegetariana",
        ],
        categories: &["Pizza", "Pasta", "Antipasti", "Dolci", "Drycker"],
    },
    Cuisine {
        name: "Swedish",
        first: &["Köket", "Krogen", "Husman", "Matsalen", "Gästgiveriet"],
        second: &["på Hörnet", "Ankaret", "Fyren", "Sjöbod", "Smaken", "Älgen"],
        dishes: &[
            "Köttbullar",
            "Räksmörgås",
            "Pytt i panna",
            "Raggmunk",
            "Kåldolmar",
            "Sill",
            "Gravlax",
            "Ärtsoppa",
            "Janssons frestelse",
            "Kanelbulle",
            "Prinsesstårta",
            "Stekt strömming",
            "Wallenbergare",
        ],
        modifiers: &["med potatismos", "med lingon", "Klassisk", "Dagens", "Stor"],
        categories: &["Husman", "Smörgåsar", "Fika", "Varmrätter", "Drycker"],
    },
    Cuisine {
        name: "Thai",
        first: &["Thai", "Bangkok", "Siam", "Chiang Mai", "Phuket"],
        second: &["Garden", "Kitchen", "Orchid", "Street Food", "House"],
        dishes: &[
            "Pad Thai",
            "Green Curry",
            "Red Curry",
            "Massaman Curry",
            "Tom Yum",
            "Tom Kha Gai",
            "Som Tam",
            "Pad See Ew",
            "Khao Pad",
            "Larb",
            "Satay",
            "Mango Sticky Rice",
        ],
        modifiers: &["Kyckling", "Räkor", "Tofu", "Biff", "Extra stark"],
        categories: &["Curry", "Wok", "Soppor", "Förrätter", "Efterrätter"],
    },
    Cuisine {
        name: "Japanese",
        first: &["Sushi", "Ramen", "Izakaya", "Tokyo", "Osaka"],
        second: &["Ume", "Sakura", "Bar", "Yuki", "Hana", "Kaze"],
        dishes: &[
            "Lax nigiri",
            "Tonfisk nigiri",
            "Maki",
            "California Roll",
            "Sashimi",
            "Tonkotsu Ramen",
            "Miso Ramen",
            "Gyoza",
            "Edamame",
            "Tempura",
            "Donburi",
            "Yakitori",
            "Mochi",
        ],
        modifiers: &["12 bitar", "Deluxe", "Vegetarisk", "Spicy", "Mix"],
        categories: &["Sushi", "Ramen", "Små rätter", "Bowls", "Drycker"],
    },
    Cuisine {
        name: "Indian",
        first: &["Taj", "Delhi", "Mumbai", "Masala", "Curry"],
        second: &["Palace", "House", "Garden", "Express", "Mahal"],
        dishes: &[
            "Butter Chicken",
            "Chicken Tikka Masala",
            "Lamm Korma",
            "Palak Paneer",
            "Dal Makhani",
            "Biryani",
            "Vindaloo",
            "Naan",
            "Samosa",
            "Tandoori",
            "Chana Masala",
            "Mango Lassi",
        ],
        modifiers: &["Vitlök", "Stark", "Mild", "Special", "Vegetarisk"],
        categories: &["Curry", "Tandoor", "Bröd", "Förrätter", "Drycker"],
    },
    Cuisine {
        name: "Tex-Mex",
        first: &["Cantina", "Taqueria", "El", "La", "Casa"],
        second: &["Loco", "Sol", "Azteca", "Mariachi", "Fuego"],
        dishes: &[
            "Burrito",
            "Tacos",
            "Quesadilla",
            "Nachos",
            "Enchiladas",
            "Fajitas",
            "Chili con Carne",
            "Guacamole",
            "Churros",
            "Burrito Bowl",
        ],
        modifiers: &["Pollo", "Carne Asada", "Vegetariano", "Grande", "Picante"],
        categories: &["Burritos", "Tacos", "Tillbehör", "Desserts"],
    },
    Cuisine {
        name: "American",
        first: &["Burger", "Grill", "Diner", "Smash", "BBQ"],
        second: &["Joint", "Shack", "Brothers", "Factory", "Station"],
        dishes: &[
            "Cheeseburger",
            "Bacon Burger",
            "Smash Burger",
            "Chicken Burger",
            "Veggie Burger",
            "Pulled Pork",
            "Spareribs",
            "Pommes",
            "Onion Rings",
            "Milkshake",
            "Hot Dog",
            "Caesar Salad",
        ],
        modifiers: &["Dubbel", "Classic", "Deluxe", "med Ost", "Trippel"],
        categories: &["Burgare", "Tillbehör", "Shakes", "Sallader"],
    },
    Cuisine {
        name: "Lebanese",
        first: &["Beirut", "Falafel", "Kebab", "Shawarma", "Cedar"],
        second: &["House", "Corner", "Grill", "Kitchen", "Express"],
        dishes: &[
            "Falafel",
            "Shawarma",
            "Hummus",
            "Halloumi",
            "Kebabtallrik",
            "Tabbouleh",
            "Fattoush",
            "Baba Ganoush",
            "Manakish",
            "Baklava",
            "Kyckling Shish",
        ],
        modifiers: &["Rulle", "Tallrik", "Box", "Extra", "Vegansk"],
        categories: &["Rullar", "Tallrikar", "Meze", "Sött"],
    },
    Cuisine {
        name: "Vietnamese",
        first: &["Phở", "Saigon", "Hanoi", "Bánh Mì", "Mekong"],
        second: &["Bar", "House", "Kitchen", "Corner", "Garden"],
        dishes: &[
            "Phở Bò",
            "Phở Gà",
            "Bún Chả",
            "Bánh Mì",
            "Gỏi Cuốn",
            "Chả Giò",
            "Cơm Tấm",
            "Bún Bò Huế",
            "Cà Phê Sữa Đá",
        ],
        modifiers: &["Stor", "Liten", "Special", "Vegetarisk"],
        categories: &["Soppor", "Smörgåsar", "Vårrullar", "Drycker"],
    },
    Cuisine {
        name: "Café",
        first: &["Café", "Kafé", "Konditori", "Bageri", "Espresso"],
        second: &["Haga", "Mocca", "Kanel", "Bönan", "Fikarummet"],
        dishes: &[
            "Kanelbulle",
            "Kardemummabulle",
            "Kladdkaka",
            "Morotskaka",
            "Cappuccino",
            "Latte",
            "Croissant",
            "Räksmörgås",
            "Smoothie",
            "Chokladboll",
        ],
        modifiers: &["Stor", "Liten", "Havremjölk", "Glutenfri", "Dagens"],
        categories: &["Fika", "Kaffe", "Smörgåsar", "Bakverk"],
    },
];

/// Gothenburg districts, added to some names ("Pizzeria Napoli Majorna").
const DISTRICTS: &[&str] = &[
    "Haga",
    "Linné",
    "Majorna",
    "Vasastan",
    "Centrum",
    "Hisingen",
    "Örgryte",
    "Johanneberg",
    "Lindholmen",
    "Kungsladugård",
    "Gamlestaden",
    "Frölunda",
    "Mölndal",
    "Eriksberg",
    "Guldheden",
];

/// Schedules and how common they are.
const HOURS: &[(Option<DailyHours>, f64)] = &[
    (
        Some(DailyHours {
            open: "11:00",
            close: "22:00",
        }),
        0.6,
    ),
    (
        Some(DailyHours {
            open: "07:30",
            close: "18:00",
        }),
        0.15,
    ),
    (
        Some(DailyHours {
            open: "17:00",
            close: "03:00",
        }),
        0.15,
    ),
    (None, 0.1),
];

/// Words that customers search for: whole words and prefixes, from the
/// vocabularies above.
pub const POPULAR_QUERIES: &[&str] = &[
    "pizza",
    "sushi",
    "thai",
    "burger",
    "kebab",
    "falafel",
    "ramen",
    "pad thai",
    "köttbullar",
    "kottbullar",
    "curry",
    "taco",
    "pho",
    "kanelbulle",
    "café",
    "pizz",
    "sus",
    "bur",
    "marg",
    "butter chicken",
    "vegetarisk",
    "räksmörgås",
    "napoli",
    "haga",
];

/// `n` restaurants with `dishes_per_restaurant` dishes each. Half are within
/// 5 km of the centre (restaurants cluster downtown), the rest uniform in
/// `city`. Radii are mostly 2–6 km; one in twenty delivers 10–15 km.
pub fn restaurants(
    seed: u64,
    n: usize,
    dishes_per_restaurant: usize,
    city: City,
) -> Vec<GenRestaurant> {
    let mut rng = StdRng::seed_from_u64(seed);
    let downtown = City {
        centre: city.centre,
        size_m: 5_000.0,
    };
    (0..n)
        .map(|_| {
            let location = if rng.random_bool(0.5) {
                downtown.random_point(&mut rng)
            } else {
                city.random_point(&mut rng)
            };
            generate_one(&mut rng, location, dishes_per_restaurant)
        })
        .collect()
}

fn pick<'a>(rng: &mut StdRng, words: &'a [&'a str]) -> &'a str {
    words.choose(rng).copied().unwrap_or_default()
}

fn generate_one(rng: &mut StdRng, location: Point, dish_count: usize) -> GenRestaurant {
    let cuisine = &CUISINES[rng.random_range(0..CUISINES.len())];
    let mut name = format!("{} {}", pick(rng, cuisine.first), pick(rng, cuisine.second));
    if rng.random_bool(0.3) {
        name.push(' ');
        name.push_str(pick(rng, DISTRICTS));
    }
    let mut cuisines = vec![cuisine.name.to_owned()];
    if rng.random_bool(0.2) {
        let other = &CUISINES[rng.random_range(0..CUISINES.len())];
        if other.name != cuisine.name {
            cuisines.push(other.name.to_owned());
        }
    }
    let mut roll = rng.random::<f64>();
    let mut hours = None;
    for &(h, share) in HOURS {
        hours = h;
        roll -= share;
        if roll < 0.0 {
            break;
        }
    }
    let delivery_radius_m = if rng.random_bool(0.05) {
        rng.random_range(10_000..15_000)
    } else {
        rng.random_range(2_000..6_000)
    };
    let dishes = (0..dish_count)
        .map(|_| {
            let base = pick(rng, cuisine.dishes);
            let name = match rng.random_range(0..3) {
                0 => base.to_owned(),
                1 => format!("{base} {}", pick(rng, cuisine.modifiers)),
                _ => format!("{} {base}", pick(rng, cuisine.modifiers)),
            };
            GenDish {
                id: Uuid::from_u128(rng.random()),
                name,
                category: pick(rng, cuisine.categories).to_owned(),
                price_cents: rng.random_range(39..=299) * 100,
                available: rng.random_bool(0.95),
            }
        })
        .collect();
    GenRestaurant {
        id: Uuid::from_u128(rng.random()),
        name,
        location,
        cuisines,
        hours,
        delivery_radius_m,
        accepting_orders: rng.random_bool(0.97),
        dishes,
    }
}
