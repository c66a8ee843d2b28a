// Composer templates: for each kind of event, its CAP category and the protective advice the alert office starts
// from (after the defence guidelines published with the meteorological warning signals); the office edits both.
export const EVENTS = {
  暴雨: { category: "Met", instruction: "停止户外作业和集会，转移低洼地带、危旧房屋人员，远离河道、山洪和地质灾害易发区。" },
  暴雪: { category: "Met", instruction: "减少出行，驾车减速慢行，做好道路除雪和设施防冻，加固大棚和临时搭建物。" },
  寒潮: { category: "Met", instruction: "注意防寒保暖，做好牲畜、家禽和农作物防冻，防范燃煤取暖一氧化碳中毒。" },
  大风: { category: "Met", instruction: "停止高空、水上等户外作业，加固围板、棚架、广告牌等易被风吹动的搭建物。" },
  沙尘暴: { category: "Met", instruction: "关好门窗，减少外出，外出佩戴口罩、护目镜，驾车减速慢行。" },
  高温: { category: "Met", instruction: "避免午后高温时段户外活动，注意防暑降温，加强用电、用水和防火安全。" },
  干旱: { category: "Met", instruction: "节约用水，做好人畜饮水保障和农田灌溉调度，加强森林防火。" },
  雷电: { category: "Met", instruction: "尽量留在室内，远离孤立高大物体和金属设施，切断危险电源。" },
  冰雹: { category: "Met", instruction: "到室内躲避，妥善安置车辆，做好农作物和设施的防护。" },
  霜冻: { category: "Met", instruction: "对农作物、蔬菜、花卉等采取覆盖、熏烟、灌溉等防冻措施。" },
  大雾: { category: "Met", instruction: "驾车打开雾灯、减速慢行、保持车距，机场、高速公路和码头采取交通管制措施。" },
  霾: { category: "Met", instruction: "减少户外活动，老人、儿童和慢性病患者留在室内，外出佩戴口罩。" },
  道路结冰: { category: "Met", instruction: "驾车减速慢行，行人注意防滑，交通、公安部门做好道路交通管理。" },
  森林火险: { category: "Fire", instruction: "严禁一切野外用火，加强巡山护林，做好扑火队伍和物资准备。" },
  地质灾害: { category: "Geo", instruction: "隐患点及周边人员立即转移避险，严禁在危险区域停留，发现险情及时报告。" },
  山洪: { category: "Met", instruction: "沿河、沟道人员立即转移到高处，不要涉水过河，不在河道附近停留。" },
};

export const URGENCY = { Immediate: "立即", Expected: "预计 1 小时内", Future: "将来", Past: "已过去", Unknown: "未知" };
export const CERTAINTY = { Observed: "已发生", Likely: "很可能", Possible: "可能", Unlikely: "不太可能", Unknown: "未知" };

/** The headline the office usually writes: "太原市应急管理局发布暴雨橙色预警". */
export const headlineFor = (sender, event, colourName) => `${sender || ""}发布${event}${colourName}预警`;
