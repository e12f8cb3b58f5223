//! The tray as today's desktops see it: a StatusNotifierWatcher on the
//! test's session bus (what a panel provides), so the app registers a
//! StatusNotifierItem with a dbusmenu instead of an XEmbed icon; and a reader
//! of that item (status, icon, menu labels) that can click a menu item.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zbus::{OwnedVariant as OwnedValue, Variant as Value};

/// Items registered: (sender's unique bus name, the path or name it gave).
type Items = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Items,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) {
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        self.items.lock().unwrap().push((sender, service));
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(s, p)| format!("{s}{p}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// A watcher serving on the bus at `address` until dropped.
pub struct WatcherService {
    _conn: zbus::Connection,
    items: Items,
}

impl WatcherService {
    pub async fn start(address: &str) -> WatcherService {
        let items: Items = Arc::default();
        let conn = zbus::connection::Builder::address(address)
            .name("org.kde.StatusNotifierWatcher")
            .serve_at(
                "/StatusNotifierWatcher",
                Watcher {
                    items: Arc::clone(&items),
                },
            )
            .build()
            .await
            .unwrap();
        WatcherService { _conn: conn, items }
    }

    /// The first item registered: (bus name, object path).
    pub fn item(&self) -> Option<(String, String)> {
        let items = self.items.lock().unwrap();
        let (sender, service) = items.first()?.clone();
        // The item names its object path, or a bus name that serves the
        // well-known path.
        if service.starts_with('/') {
            Some((sender, service))
        } else {
            Some((service, "/StatusNotifierItem".to_owned()))
        }
    }
}

/// A dbusmenu layout node as it crosses the bus: `(ia{sv}av)`.
type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// One entry of a dbusmenu: id, label (empty for separators), children.
#[derive(Debug, Clone)]
pub struct MenuItem {
    pub id: i32,
    pub label: String,
    pub children: Vec<MenuItem>,
}

impl MenuItem {
    fn from_layout((id, props, children): Layout) -> MenuItem {
        let label = props
            .get("label")
            .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
            .unwrap_or_default();
        let children = children
            .into_iter()
            .filter_map(|c| {
                let v: Value<'_> = Value::from(c);
                let inner = match v {
                    Value::Variant(b) => *b,
                    other => other,
                };
                Layout::try_from(inner).ok()
            })
            .map(MenuItem::from_layout)
            .collect();
        MenuItem {
            id,
            label,
            children,
        }
    }

    /// The labels of every item, depth first.
    pub fn labels(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.children {
            if !c.label.is_empty() {
                out.push(c.label.clone());
            }
            out.extend(c.labels());
        }
        out
    }

    pub fn find(&self, label: &str) -> Option<&MenuItem> {
        self.children
            .iter()
            .find(|c| c.label == label)
            .or_else(|| self.children.iter().find_map(|c| c.find(label)))
    }
}

/// What a desktop reads of the item.
pub struct Item {
    conn: zbus::Connection,
    dest: String,
    path: String,
}

impl Item {
    pub async fn connect(address: &str, dest: String, path: String) -> Item {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .unwrap();
        Item { conn, dest, path }
    }

    async fn proxy(&self, path: &str, iface: &str) -> zbus::Proxy<'static> {
        zbus::Proxy::new(
            &self.conn,
            self.dest.clone(),
            path.to_owned(),
            iface.to_owned(),
        )
        .await
        .unwrap()
    }

    /// A string property of the item (`Status`, `IconName`, `Title`, …).
    pub async fn property(&self, name: &str) -> String {
        let p = self.proxy(&self.path, "org.kde.StatusNotifierItem").await;
        p.get_property::<String>(name).await.unwrap_or_default()
    }

    async fn menu_path(&self) -> String {
        let p = self.proxy(&self.path, "org.kde.StatusNotifierItem").await;
        p.get_property::<zbus::OwnedObjectPath>("Menu")
            .await
            .unwrap()
            .to_string()
    }

    /// The whole menu, as its layout says now.
    pub async fn menu(&self) -> MenuItem {
        let path = self.menu_path().await;
        let p = self.proxy(&path, "com.canonical.dbusmenu").await;
        let (_rev, layout): (u32, Layout) = p
            .call("GetLayout", &(0i32, -1i32, vec!["label"]))
            .await
            .unwrap();
        MenuItem::from_layout(layout)
    }

    /// Clicks a menu item, as a panel does.
    pub async fn click(&self, id: i32) {
        let path = self.menu_path().await;
        let p = self.proxy(&path, "com.canonical.dbusmenu").await;
        let _: () = p
            .call("Event", &(id, "clicked", Value::from(0i32), 0u32))
            .await
            .unwrap();
    }
}
