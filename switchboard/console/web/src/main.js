import { createApp } from "vue";
// The services used from script (toasts, dialogs) bring their styles here; template components bring their own.
import "element-plus/es/components/message/style/css";
import "element-plus/es/components/message-box/style/css";
import "element-plus/es/components/notification/style/css";
import App from "./App.vue";
import "./console.css";

createApp(App).mount("#app");
